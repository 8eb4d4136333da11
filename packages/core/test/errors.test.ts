/** Typed errors: codes, causes, and `instanceof` across two loaded copies of core. */
import {
  ClosedByUserError,
  ConnectFailedError,
  HttpStatusError,
  hasErrorCode,
  isRecoverable,
  LifelineError,
  LinkClosedError,
  LinkFailedError,
  QueueOverflowError,
} from '@lifeline/core';
import { describe, expect, test } from 'vitest';

describe('errors', () => {
  test('have their facts as own properties, in the order declared, even when undefined', () => {
    // The fields are `declare`d and set by the constructors (errors.ts): one left unset on some
    // path would be missing here instead of `undefined`.
    const keys = (error: object) => Object.keys(error).filter((key) => key !== 'stack');
    expect(keys(new LinkClosedError(undefined))).toEqual([
      'code',
      'recoverable',
      'name',
      'closeCode',
      'reason',
    ]);
    expect(keys(new LinkFailedError('x'))).toEqual(['code', 'recoverable', 'name', 'syscallCode']);
    expect(keys(new HttpStatusError(503))).toEqual(['code', 'recoverable', 'name', 'status', 'retryAfterMs']);
    expect(keys(new QueueOverflowError('bytes', 'x'))).toEqual(['code', 'recoverable', 'name', 'limit']);
  });

  test('carry a string code, a cause and the facts of their kind', () => {
    const cause = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const failed = new LinkFailedError('reset', { cause });
    expect(failed).toBeInstanceOf(Error);
    expect(failed).toBeInstanceOf(LifelineError);
    expect(failed).toMatchObject({
      name: 'LinkFailedError',
      code: 'ERR_LINK_FAILED',
      cause,
      syscallCode: 'ECONNRESET',
    });
    expect(new LinkClosedError(1006, 'gone')).toMatchObject({
      code: 'ERR_LINK_CLOSED',
      closeCode: 1006,
      reason: 'gone',
    });
    expect(new HttpStatusError(503)).toMatchObject({ code: 'ERR_HTTP_STATUS', status: 503 });
    expect(new QueueOverflowError('bytes', 'full')).toMatchObject({ limit: 'bytes', recoverable: false });
    expect(hasErrorCode(new ClosedByUserError(), 'ERR_CLOSED_BY_USER')).toBe(true);
    expect(hasErrorCode(new Error('x'), 'ERR_CLOSED_BY_USER')).toBe(false);
  });

  test('instanceof tells the classes apart', () => {
    const closed = new LinkClosedError(1000);
    expect(closed).toBeInstanceOf(LinkClosedError);
    expect(closed).not.toBeInstanceOf(LinkFailedError);
    expect(new Error('plain')).not.toBeInstanceOf(LifelineError);
    expect(null).not.toBeInstanceOf(LifelineError);
    expect({ code: 'ERR_LINK_FAILED' }).not.toBeInstanceOf(LinkFailedError);
  });
});

describe('instanceof across two copies of core', () => {
  // A second module instance of errors.ts: the situation of an app bundle and a dependency's
  // bundle that each carry their own copy of @lifeline/core.
  const loadCopy = () =>
    // @ts-expect-error TypeScript cannot resolve the query string; vite loads the file as a new module.
    import('../src/engine/errors.ts?copy') as Promise<typeof import('../src/engine/errors.js')>;

  test('the copy really is a different module', async () => {
    const copy = await loadCopy();
    expect(copy.LinkFailedError).not.toBe(LinkFailedError);
    expect(Object.getPrototypeOf(new copy.LinkFailedError('x'))).not.toBe(LinkFailedError.prototype);
  });

  test("an error of one copy is an instance of the other copy's class and base class, both ways", async () => {
    const copy = await loadCopy();
    const foreign = new copy.LinkFailedError('reset', { syscallCode: 'ECONNRESET' });
    expect(foreign).toBeInstanceOf(LinkFailedError);
    expect(foreign).toBeInstanceOf(LifelineError);
    expect(foreign).not.toBeInstanceOf(LinkClosedError);
    expect(foreign).not.toBeInstanceOf(ConnectFailedError);
    const local = new LinkClosedError(4401);
    expect(local).toBeInstanceOf(copy.LinkClosedError);
    expect(local).toBeInstanceOf(copy.LifelineError);
    expect(local).not.toBeInstanceOf(copy.LinkFailedError);
    expect(hasErrorCode(new copy.ClosedByUserError(), 'ERR_CLOSED_BY_USER')).toBe(true);
  });

  test('the brand survives a minifier that renamed the classes of one copy', async () => {
    const minified = (await import(
      // @ts-expect-error TypeScript cannot resolve the query string; vite loads the file as a new module.
      '../src/engine/errors.ts?minified'
    )) as typeof import('../src/engine/errors.js');
    for (const [ctor, short] of [
      [minified.LinkFailedError, 'a'],
      [minified.LinkClosedError, 'b'],
      [minified.LifelineError, 'c'],
    ] as const) {
      Object.defineProperty(ctor, 'name', { value: short });
    }
    const foreign = new minified.LinkFailedError('reset');
    expect(foreign.name).toBe('LinkFailedError');
    expect(foreign).toBeInstanceOf(LinkFailedError);
    expect(foreign).not.toBeInstanceOf(LinkClosedError);
    expect(new LinkClosedError(1006)).toBeInstanceOf(minified.LinkClosedError);
    expect(new LinkClosedError(1006)).not.toBeInstanceOf(minified.LinkFailedError);
  });

  test("the classification works on the other copy's errors", async () => {
    const copy = await loadCopy();
    expect(isRecoverable(new copy.LinkClosedError(1006))).toBe(true);
    expect(isRecoverable(new copy.LinkClosedError(4403))).toBe(false);
    expect(isRecoverable(new copy.HttpStatusError(503))).toBe(true);
    expect(isRecoverable(new copy.ClosedByUserError())).toBe(false);
  });

  test('an object that carries the brand is recognised; one without it is not', () => {
    const branded = new Error('from elsewhere') as Error & { code: string };
    branded.code = 'ERR_LINK_FAILED';
    Object.defineProperty(branded, Symbol.for('lifeline.error'), { value: true });
    Object.defineProperty(branded, 'lifeline.error.ERR_LINK_FAILED', { value: 'LinkFailedError' });
    expect(branded).toBeInstanceOf(LifelineError);
    expect(branded).toBeInstanceOf(LinkFailedError);
    expect(branded).not.toBeInstanceOf(LinkClosedError);
    const unbranded = Object.assign(new Error('look-alike'), {
      code: 'ERR_LINK_FAILED',
      name: 'LinkFailedError',
    });
    expect(unbranded).not.toBeInstanceOf(LifelineError);
    // The brand and the code must agree: a brand with another code is not enough.
    const mismatched = Object.assign(new Error('mismatch'), { code: 'ERR_LINK_CLOSED' });
    Object.defineProperty(mismatched, Symbol.for('lifeline.error'), { value: true });
    Object.defineProperty(mismatched, 'lifeline.error.ERR_LINK_FAILED', { value: 'LinkFailedError' });
    expect(mismatched).toBeInstanceOf(LifelineError);
    expect(mismatched).not.toBeInstanceOf(LinkFailedError);
    expect(mismatched).not.toBeInstanceOf(LinkClosedError);
  });
});

describe('every error class is branded by its code', () => {
  type ErrorsModule = typeof import('../src/engine/errors.js');
  const loadCopy = () =>
    // @ts-expect-error TypeScript cannot resolve the query string; vite loads the file as a new module.
    import('../src/engine/errors.ts?every') as Promise<ErrorsModule>;
  /** The module's error classes (the subclasses of its LifelineError), by export name. */
  type ErrorClass = new (...args: unknown[]) => InstanceType<typeof LifelineError>;
  const classesOf = (module: ErrorsModule): [string, ErrorClass][] =>
    Object.entries(module as Record<string, unknown>).flatMap(([name, value]) =>
      typeof value === 'function' &&
      Object.prototype.isPrototypeOf.call(module.LifelineError.prototype, value.prototype)
        ? [[name, value as ErrorClass] as [string, ErrorClass]]
        : [],
    );
  // Arguments every constructor takes without complaint (strings and numbers where it wants either).
  const make = (ctor: ErrorClass) => new ctor('x', 'y', []);

  test('28 classes, each with its own code, and no errorName statics left', async () => {
    const local = classesOf(await import('../src/engine/errors.js'));
    expect(local).toHaveLength(28);
    const codes = local.map(([, ctor]) => make(ctor).code);
    expect(new Set(codes).size).toBe(28);
    for (const [, ctor] of local) expect(Object.hasOwn(ctor, 'errorName')).toBe(false);
  });

  test('across two copies, each class answers instanceof for its own errors only, and names survive renaming', async () => {
    const local = await import('../src/engine/errors.js');
    const copy = await loadCopy();
    const localClasses = new Map(classesOf(local));
    const copyClasses = classesOf(copy);
    expect(copyClasses).toHaveLength(localClasses.size);
    // The copy is minified: its classes lose their names.
    for (const [, ctor] of copyClasses) Object.defineProperty(ctor, 'name', { value: 'm' });
    let checks = 0;
    for (const [name, copyCtor] of copyClasses) {
      const foreign = make(copyCtor);
      expect(foreign.name).toBe(name);
      expect(foreign).toBeInstanceOf(local.LifelineError);
      for (const [otherName, localCtor] of localClasses) {
        expect(foreign instanceof localCtor, `${name} instanceof ${otherName}`).toBe(otherName === name);
        expect(make(localCtor) instanceof copyCtor, `${otherName} instanceof copy ${name}`).toBe(
          otherName === name,
        );
        checks += 2;
      }
    }
    expect(checks).toBe(2 * 28 * 28);
  });

  test("a user's subclass keeps its name and the prototype chain decides for it", () => {
    class RetryBudgetError extends LinkFailedError {}
    const error = new RetryBudgetError('budget spent');
    expect(error.name).toBe('RetryBudgetError');
    expect(error.code).toBe('ERR_LINK_FAILED');
    expect(error).toBeInstanceOf(RetryBudgetError);
    expect(error).toBeInstanceOf(LinkFailedError);
    expect(error).toBeInstanceOf(LifelineError);
    expect(new LinkFailedError('plain')).not.toBeInstanceOf(RetryBudgetError);
  });

  test('the base class made with a subclass code is not an instance of that subclass', () => {
    const base = new LifelineError('ERR_LINK_FAILED', 'made by hand');
    expect(base.name).toBe('LifelineError');
    expect(base).toBeInstanceOf(LifelineError);
    expect(base).not.toBeInstanceOf(LinkFailedError);
  });
});
