import { InvalidOptionError } from '../engine/errors.js';
import type { ResumeProtocol, resume } from '../resume/client/resume.js';
import type { ResumeOption } from './ha-web-socket.js';

/**
 * The protocol the `resume` option of `HAWebSocket` and `haWebSocket()` asks for, `undefined` when
 * it is off: `resume()`'s protocol as it is, `true` and options through the platform's factory.
 * @throws {InvalidOptionError} `true` or options where the platform ships no protocol (browsers)
 */
export function resumeProtocolOf(
  option: ResumeOption | undefined,
  factory: typeof resume | undefined,
): ResumeProtocol | undefined {
  if (!option || typeof option === 'function') return option || undefined;
  if (!factory) {
    // Kept short: this string ships in every browser bundle, resuming or not.
    throw new InvalidOptionError("resume: pass resume() from '@lifeline/core/resume'");
  }
  return factory(option === true ? undefined : option);
}
