// `@lifeline/core/fetch`: `haFetch` and `HAEventSource` factories (`fetch` is injected) and the body
// resumers they use: bytes by Range (RFC 9110 §14), event streams by Last-Event-ID, NDJSON by cursor.
export * from './event-stream-resume.js';
export * from './ha-event-source.js';
export * from './ha-fetch.js';
export * from './ndjson-resume.js';
export { type ContentRange, parseContentRange, RangeResume, strongETag } from './range-resume.js';
export * from './resumable-body.js';
export { parseRetryAfter } from './retry-after.js';
