// Node's EventTarget (Node 20 and 22) makes two Maps in its constructor: its listeners by type
// (`kEvents`) and its `on*` attribute handlers (`kHandlers`, for Node's own `defineEventHandler`
// attributes, which an HAWebSocket has none of). With their tables they are about 370 B of every
// idle HAWebSocket, most of which never has a listener (an `onmessage` handler is a field of its
// own). Node 24 makes them on first use itself.
//
// This keeps Node's EventTarget, its methods and its semantics whole (the WHATWG listener rules,
// `once`, `signal`, `handleEvent`, error reporting, `events.once`, `getEventListeners`): only where
// the two maps are kept changes. An accessor on the class's prototype takes the constructor's
// assignment (the empty map is dropped) and answers reads: with the instance's own map once it has
// one, else with a shared empty map whose `set` (the only way Node's code adds to it, as
// `this[kEvents].set(type, root)`, right after the read) makes the instance's own map. The own
// listener map lets go of itself when its last type is deleted; a type whose last listener went
// (Node keeps the emptied entry after a `once` listener ran) is deleted from the `kRemoveListener`
// hook Node calls then, as Node's `removeEventListener` deletes it.
// Applied only where a probe class shows Node's EventTarget behaving as expected with it.

import { types } from 'node:util';

type Target = EventTarget & Record<symbol, unknown>;

/** The target whose read of a map symbol got the shared empty map, until that map's next call. */
let reader: Target | undefined;

/** An instance's own listener map: it drops itself from its owner when emptied (kept only if used). */
class OwnMap extends Map<unknown, unknown> {
  constructor(
    private readonly owner: Target,
    private readonly slot: symbol,
  ) {
    super();
  }
  override delete(key: unknown): boolean {
    const deleted = super.delete(key);
    if (this.size === 0 && this.owner[this.slot] === this) this.owner[this.slot] = undefined;
    return deleted;
  }
  /** Deletes `type` if its listener list (Node's root: `size`, `next`) is empty. */
  dropEmpty(type: unknown): void {
    const root = super.get(type) as { size: number; next: unknown } | undefined;
    if (root !== undefined && root.size === 0 && root.next === undefined) this.delete(type);
  }
}

/** What every instance without a map of its own reads: empty, and `set` moves into the reader's own map. */
class SharedEmptyMap extends Map<unknown, unknown> {
  constructor(private readonly slot: symbol) {
    super();
  }
  override get(_key: unknown): undefined {
    reader = undefined;
    return undefined;
  }
  override has(_key: unknown): boolean {
    reader = undefined;
    return false;
  }
  override delete(_key: unknown): boolean {
    reader = undefined;
    return false;
  }
  override set(key: unknown, value: unknown): this {
    const owner = reader;
    reader = undefined;
    // Only reachable as `target[symbol].set(...)`, read just before: anything else is a bug here.
    if (owner === undefined) throw new TypeError('lifeline: a shared empty listener map cannot be written');
    const own = new OwnMap(owner, this.slot);
    owner[this.slot] = own;
    own.set(key, value);
    return own as unknown as this;
  }
}

/** Puts the accessor for `symbol` (a map Node's EventTarget keeps) on `prototype`, its map in `slot`. */
function lazyMap(prototype: object, symbol: symbol, slot: symbol): void {
  const empty = new SharedEmptyMap(slot);
  Object.defineProperty(prototype, symbol, {
    configurable: true,
    get(this: Target) {
      const own = this[slot];
      if (own !== undefined) return own;
      reader = this;
      return empty;
    },
    // The constructor's empty map is dropped; a map with entries (nothing assigns one today) is kept.
    set(this: Target, map: Map<unknown, unknown>) {
      if (map.size > 0) this[slot] = map;
    },
  });
}

/** Whether `prototype` (an EventTarget subclass's, patched) behaves as Node's EventTarget does. */
function selfTest(Probe: new () => EventTarget): boolean {
  try {
    const target = new Probe();
    if (Object.getOwnPropertySymbols(target).some((s) => s.description === 'kEvents')) return false;
    let heard = 0;
    const listener = () => heard++;
    target.addEventListener('a', listener);
    target.addEventListener('a', listener);
    target.addEventListener('b', () => (heard += 10), { once: true });
    target.dispatchEvent(new Event('a'));
    target.dispatchEvent(new Event('b'));
    target.dispatchEvent(new Event('b'));
    target.removeEventListener('a', listener);
    target.dispatchEvent(new Event('a'));
    target.addEventListener('a', listener);
    target.dispatchEvent(new Event('a'));
    return heard === 12;
  } catch {
    return false;
  }
}

/**
 * Makes Node's EventTarget maps of `Class`'s instances (an EventTarget subclass) made on first
 * use, where Node makes them in the constructor and a probe shows the change keeps its behaviour;
 * otherwise leaves the class as it is.
 */
export function lazyListenerMaps(Class: { prototype: EventTarget }): void {
  const probe = new EventTarget() as Target;
  const symbols = Object.getOwnPropertySymbols(probe);
  const kEvents = symbols.find((s) => s.description === 'kEvents');
  const kHandlers = symbols.find((s) => s.description === 'kHandlers');
  if (kEvents === undefined || kHandlers === undefined) return;
  // Node's own maps are `SafeMap`s, whose prototype chain is not `Map.prototype`.
  if (!types.isMap(probe[kEvents]) || !types.isMap(probe[kHandlers])) return;
  const kRemoveListener = Object.getOwnPropertySymbols(EventTarget.prototype).find(
    (s) => s.description === 'kRemoveListener',
  );
  if (kRemoveListener === undefined) return;
  const removed = (EventTarget.prototype as unknown as Target)[kRemoveListener];
  if (typeof removed !== 'function') return;
  const patch = (prototype: object) => {
    const listeners = Symbol('lifeline.listeners');
    lazyMap(prototype, kEvents, listeners);
    lazyMap(prototype, kHandlers, Symbol('lifeline.handlers'));
    // Called by Node with the listeners left of `type`, after a removal (by removeEventListener or
    // of a `once` listener that ran): with none left, the type goes, and an emptied map with it.
    Object.defineProperty(prototype, kRemoveListener, {
      configurable: true,
      writable: true,
      value(this: Target, size: number, type: unknown) {
        if (size === 0) (this[listeners] as OwnMap | undefined)?.dropEmpty(type);
        // biome-ignore lint/complexity/noArguments: Node's hook, called with all of its arguments
        return removed.apply(this, arguments);
      },
    });
  };
  class Probe extends EventTarget {}
  patch(Probe.prototype);
  if (selfTest(Probe)) patch(Class.prototype);
}
