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
  // String() converts a symbol too ("Symbol(x)"), where a template literal throws.
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/** Throws the one message shape of every option check: what `name` must be, and what it got. */
function refuse(name: string, expected: string, value: unknown): never {
  throw new InvalidOptionError(`${name} must be ${expected}, got ${describe(value)}`);
}

/** The kinds of number a table entry names (its kind letter, lower case), as messages say them. */
const NUMBER_KINDS: Record<string, string> = { d: 'a duration in ms', i: 'an integer', n: 'a number' };

/**
 * Checks a number of `kind` (`d` a duration, `i` an integer, `n` a finite number) from `min` to
 * `max` (default {@link MAX_TIMER_MS} for a duration, `Number.MAX_SAFE_INTEGER` otherwise), or
 * `Infinity` where `allowInfinity` says so. `undefined` passes.
 */
function checkNumber(
  name: string,
  value: unknown,
  kind: string,
  min = 0,
  // 2 ** 53 - 1 is Number.MAX_SAFE_INTEGER, shorter in a minified bundle (the browser gate counts bytes).
  max = kind === 'd' ? MAX_TIMER_MS : 2 ** 53 - 1,
  allowInfinity?: boolean,
): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') {
    if (value === Infinity && allowInfinity) return value;
    if (value >= min && value <= max && (kind !== 'i' || Number.isInteger(value))) return value;
  }
  const upper = max === Infinity ? '' : ` to ${max}`;
  return refuse(
    name,
    `${NUMBER_KINDS[kind]} from ${min}${upper}${allowInfinity ? ' (or Infinity)' : ''}`,
    value,
  );
}

/**
 * Checks a duration in ms: a finite number from `min` (default 0) to `max` (default
 * {@link MAX_TIMER_MS}), or `Infinity` where `allowInfinity` says it means "never".
 * `undefined` (the option left out) passes.
 * @throws {InvalidOptionError} naming `name` and the accepted range
 */
export function durationMs(name: string, value: unknown, range: RangeOptions = {}): number | undefined {
  return checkNumber(name, value, 'd', range.min, range.max, range.allowInfinity);
}

/**
 * Checks a count (messages, bytes, attempts): an integer from `min` (default 0) to `max` (default
 * `Number.MAX_SAFE_INTEGER`), or `Infinity` where `allowInfinity` says it means "no limit".
 * `undefined` passes.
 * @throws {InvalidOptionError} naming `name` and the accepted range
 */
export function count(name: string, value: unknown, range: RangeOptions = {}): number | undefined {
  return checkNumber(name, value, 'i', range.min, range.max, range.allowInfinity);
}

/**
 * Checks a finite number from `min` to `max` (a ratio, a factor). `undefined` passes.
 * @throws {InvalidOptionError} naming `name` and the accepted range
 */
export function finite(name: string, value: unknown, range: RangeOptions = {}): number | undefined {
  return checkNumber(name, value, 'n', range.min, range.max, range.allowInfinity);
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
  return refuse(name, list.join(' or '), value);
}

/**
 * Checks that `value` is left out or an object (a group of options, such as `backoff`). With
 * `allowFalse`, `false` (the group turned off) passes too.
 * @throws {InvalidOptionError} naming `name`
 */
export function group(name: string, value: unknown, allowFalse = false): Record<string, unknown> | undefined {
  if (value === undefined || (allowFalse && value === false)) return undefined;
  if (value !== null && typeof value === 'object') return value as Record<string, unknown>;
  return refuse(name, `an object${allowFalse ? ' or false' : ''}`, value);
}

/** Checks that `value` is left out or a function. @throws {InvalidOptionError} naming `name` */
export function fn(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    refuse(name, 'a function', value);
  }
}

/**
 * The checks of one options object, as a table (compact in the bundle: one string per object,
 * read by {@link checkOptionTable}). Entries are separated by `,`, an entry's fields by a space:
 * `name kind [min [max]]` for a number (kind `d` a duration, `i` an integer, `n` a finite number;
 * upper case `D`/`I` also accepts Infinity), `name e choice...` for one of strings, `name b` for a
 * boolean, `name f` for a function, `name g` for a group of options (its table in
 * `GROUPS` in this module), `name G` for a group that may also be `false`.
 */
export type OptionTable = string;

const RECOVERY: OptionTable =
  'maxAttemptsPerFailure I,maxRecoveries I,minUptimeMs d,backoff g,retryAfter G,isRecoverable f,shouldRecover f,random f';

/** The tables of the groups (`g`/`G` entries), by the group's option name. */
const GROUPS: Record<string, OptionTable> = {
  backoff:
    'strategy e proportional exponential,initialDelayMs d,maxDelayMs d,ratio n 0 1000,factor n 1 1000,jitter e full none',
  retryAfter: 'enabled b,maxDelayMs d',
  heartbeat: 'intervalMs d 1,timeoutMs d 1,ping f,ifSupported b',
  queue: 'maxMessages I,maxBytes I,overflow e reject drop-oldest',
};

/**
 * Checks the options object `value` (named `name` in messages; `undefined` passes, `false` too
 * with `allowFalse`) against `table`, entry by entry in the table's order, naming each option
 * `prefix.option` (`option` when `prefix` is empty).
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkOptionTable(
  name: string,
  value: unknown,
  table: OptionTable,
  allowFalse?: boolean,
  prefix = name,
): void {
  const o = group(name, value, allowFalse);
  if (!o) return;
  for (const entry of table.split(',')) {
    const [key, kind, ...rest] = entry.split(' ') as [string, string, ...string[]];
    const path = prefix ? `${prefix}.${key}` : key;
    const v = o[key];
    if (kind === 'f') fn(path, v);
    else if (kind === 'e') oneOf(path, v, rest);
    else if (kind === 'b') oneOf(path, v, [true, false]);
    else if (kind === 'g' || kind === 'G') checkOptionTable(path, v, GROUPS[key] as string, kind === 'G');
    else {
      const [min, max] = rest.map(Number);
      checkNumber(path, v, kind.toLowerCase(), min, max, kind !== kind.toLowerCase());
    }
  }
}

/**
 * Checks the recovery policy ({@link RecoveryOptions}): budgets, `backoff`, `minUptimeMs`,
 * `retryAfter` and the function options.
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkRecoveryOptions(options: object | undefined, prefix = ''): void {
  checkOptionTable(prefix || 'options', options, RECOVERY, false, prefix);
}

/**
 * Checks {@link BackoffOptions}: delays are durations (`initialDelayMs` ≤ `maxDelayMs` is not
 * required: the bound is clamped), `ratio` and `factor` finite and positive.
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkBackoffOptions(options: unknown, name = 'backoff'): void {
  checkOptionTable(name, options, GROUPS.backoff as string);
}

/**
 * Checks heartbeat timing ({@link HeartbeatTimingOptions}): both at least 1 ms; `false` (off)
 * passes.
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkHeartbeatOptions(options: unknown, name = 'heartbeat'): void {
  checkOptionTable(name, options, GROUPS.heartbeat as string, true);
}

/**
 * Checks {@link QueueOptions}: `maxMessages` and `maxBytes` integers ≥ 0 (0 refuses every send)
 * or Infinity, `overflow` one of the policies.
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkQueueOptions(options: unknown, name = 'queue'): void {
  checkOptionTable(name, options, GROUPS.queue as string);
}

/**
 * Checks the options of `attach` and the drop-ins built on it: the recovery policy, `queue`,
 * `heartbeat` and `recover`.
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkConnectionOptions(options: object | undefined): void {
  checkOptionTable('options', options, `${RECOVERY},queue g,heartbeat G,recover f`, false, '');
}
