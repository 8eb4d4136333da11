/**
 * Option checks: every public constructor and factory checks the numeric and enum options it is
 * given, eagerly, and throws an {@link InvalidOptionError} naming the option as the user wrote it
 * (`backoff.maxDelayMs`) and the accepted range. An unchecked NaN, negative or huge value does
 * not fail loudly: it turns a timer into a busy loop (Node runs any delay of 2^31 ms or more
 * after 1 ms, with a TimeoutOverflowWarning), or a limit into none.
 */
import { InvalidOptionError } from './errors.js';

/**
 * The longest delay a timer can hold, in ms (2^31 - 1, about 24.8 days): `setTimeout` in Node,
 * browsers and Deno treats a longer one as 1 ms.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

interface RangeOptions {
  /** The smallest accepted value. @default 0 */
  readonly min?: number;
  /** The largest accepted finite value. */
  readonly max?: number;
  /** `Infinity` is accepted (a documented "never" or "no limit"). @default false */
  readonly allowInfinity?: boolean;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'symbol') return value.toString();
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

function rangeText(kind: string, min: number, max: number, allowInfinity: boolean | undefined): string {
  const upper = max === Number.POSITIVE_INFINITY ? '' : ` to ${max}`;
  return `${kind} from ${min}${upper}${allowInfinity ? ' (or Infinity)' : ''}`;
}

function checkNumber(
  name: string,
  value: unknown,
  integer: boolean,
  kind: string,
  { min = 0, max = Number.MAX_SAFE_INTEGER, allowInfinity }: RangeOptions,
): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') {
    if (value === Number.POSITIVE_INFINITY && allowInfinity) return value;
    if (value >= min && value <= max && (!integer || Number.isInteger(value))) return value;
  }
  throw new InvalidOptionError(
    `${name} must be ${rangeText(kind, min, max, allowInfinity)}, got ${describe(value)}`,
  );
}

/**
 * Checks a duration in ms: a finite number from `min` (default 0) to `max` (default
 * {@link MAX_TIMER_MS}), or `Infinity` where `allowInfinity` says it means "never".
 * `undefined` (the option left out) passes.
 * @throws {InvalidOptionError} naming `name` and the accepted range
 */
export function durationMs(name: string, value: unknown, range: RangeOptions = {}): number | undefined {
  return checkNumber(name, value, false, 'a duration in ms', { max: MAX_TIMER_MS, ...range });
}

/**
 * Checks a count (messages, bytes, attempts): an integer from `min` (default 0) to `max` (default
 * `Number.MAX_SAFE_INTEGER`), or `Infinity` where `allowInfinity` says it means "no limit".
 * `undefined` passes.
 * @throws {InvalidOptionError} naming `name` and the accepted range
 */
export function count(name: string, value: unknown, range: RangeOptions = {}): number | undefined {
  return checkNumber(name, value, true, 'an integer', range);
}

/**
 * Checks a finite number from `min` to `max` (a ratio, a factor). `undefined` passes.
 * @throws {InvalidOptionError} naming `name` and the accepted range
 */
export function finite(name: string, value: unknown, range: RangeOptions = {}): number | undefined {
  return checkNumber(name, value, false, 'a number', range);
}

/**
 * Checks that `value` is one of `choices`. `undefined` passes.
 * @throws {InvalidOptionError} naming `name` and the choices
 */
export function oneOf<T extends string | boolean>(
  name: string,
  value: unknown,
  choices: readonly T[],
): T | undefined {
  if (value === undefined || choices.includes(value as T)) return value as T | undefined;
  const list = choices.map((choice) => (typeof choice === 'string' ? `'${choice}'` : String(choice)));
  throw new InvalidOptionError(`${name} must be ${list.join(' or ')}, got ${describe(value)}`);
}

/**
 * Checks that `value` is left out or an object (a group of options, such as `backoff`). With
 * `allowFalse`, `false` (the group turned off) passes too.
 * @throws {InvalidOptionError} naming `name`
 */
export function group(name: string, value: unknown, allowFalse = false): Record<string, unknown> | undefined {
  if (value === undefined || (allowFalse && value === false)) return undefined;
  if (value !== null && typeof value === 'object') return value as Record<string, unknown>;
  throw new InvalidOptionError(
    `${name} must be an object${allowFalse ? ' or false' : ''}, got ${describe(value)}`,
  );
}

/** Checks that `value` is left out or a function. @throws {InvalidOptionError} naming `name` */
export function fn(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new InvalidOptionError(`${name} must be a function, got ${describe(value)}`);
  }
}

/** `prefix.name`, or `name` at the top level. */
function at(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}

/**
 * Checks the recovery policy ({@link RecoveryOptions}): budgets, `backoff`, `minUptimeMs`,
 * `retryAfter` and the function options.
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkRecoveryOptions(options: object | undefined, prefix = ''): void {
  const o = group(prefix || 'options', options) as Record<string, unknown> | undefined;
  if (!o) return;
  count(at(prefix, 'maxAttemptsPerFailure'), o.maxAttemptsPerFailure, { allowInfinity: true });
  count(at(prefix, 'maxRecoveries'), o.maxRecoveries, { allowInfinity: true });
  durationMs(at(prefix, 'minUptimeMs'), o.minUptimeMs);
  checkBackoffOptions(o.backoff, at(prefix, 'backoff'));
  const retryAfter = group(at(prefix, 'retryAfter'), o.retryAfter, true);
  if (retryAfter) {
    oneOf(at(prefix, 'retryAfter.enabled'), retryAfter.enabled, [true, false]);
    durationMs(at(prefix, 'retryAfter.maxDelayMs'), retryAfter.maxDelayMs);
  }
  for (const name of ['isRecoverable', 'shouldRecover', 'random']) fn(at(prefix, name), o[name]);
}

/**
 * Checks {@link BackoffOptions}: delays are durations (`initialDelayMs` ≤ `maxDelayMs` is not
 * required: the bound is clamped), `ratio` and `factor` finite and positive.
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkBackoffOptions(options: unknown, name = 'backoff'): void {
  const o = group(name, options);
  if (!o) return;
  oneOf(`${name}.strategy`, o.strategy, ['proportional', 'exponential']);
  durationMs(`${name}.initialDelayMs`, o.initialDelayMs);
  durationMs(`${name}.maxDelayMs`, o.maxDelayMs);
  finite(`${name}.ratio`, o.ratio, { min: 0, max: 1_000 });
  finite(`${name}.factor`, o.factor, { min: 1, max: 1_000 });
  oneOf(`${name}.jitter`, o.jitter, ['full', 'none']);
}

/**
 * Checks heartbeat timing ({@link HeartbeatTimingOptions}): both at least 1 ms; `false` (off)
 * passes.
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkHeartbeatOptions(options: unknown, name = 'heartbeat'): void {
  const o = group(name, options, true);
  if (!o) return;
  durationMs(`${name}.intervalMs`, o.intervalMs, { min: 1 });
  durationMs(`${name}.timeoutMs`, o.timeoutMs, { min: 1 });
  fn(`${name}.ping`, o.ping);
  oneOf(`${name}.ifSupported`, o.ifSupported, [true, false]);
}

/**
 * Checks {@link QueueOptions}: `maxMessages` and `maxBytes` integers ≥ 0 (0 refuses every send)
 * or Infinity, `overflow` one of the policies.
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkQueueOptions(options: unknown, name = 'queue'): void {
  const o = group(name, options);
  if (!o) return;
  count(`${name}.maxMessages`, o.maxMessages, { allowInfinity: true });
  count(`${name}.maxBytes`, o.maxBytes, { allowInfinity: true });
  oneOf(`${name}.overflow`, o.overflow, ['reject', 'drop-oldest']);
}

/**
 * Checks the options of `attach` and the drop-ins built on it: the recovery policy, `queue`,
 * `heartbeat` and `recover`.
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkConnectionOptions(options: object | undefined): void {
  checkRecoveryOptions(options);
  if (!options) return;
  const o = options as Record<string, unknown>;
  checkQueueOptions(o.queue);
  checkHeartbeatOptions(o.heartbeat);
  fn('recover', o.recover);
}
