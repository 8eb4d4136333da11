import { createRequire } from 'node:module';
import { MissingPeerDependencyError } from '@lifeline/core/internal/server';

// Resolved from this file, as a static import would be: the package next to @lifeline/node.
// (`import.meta.url` is shimmed by tsup in the CommonJS build.)
const requireFromHere = createRequire(import.meta.url);

/**
 * Loads an optional peer dependency synchronously, so a sub-path that needs it at import time can
 * fail with a {@link MissingPeerDependencyError} naming the package to install. A static `import`
 * cannot do that: an ES module whose import is missing fails to link with `ERR_MODULE_NOT_FOUND`
 * before any of its code runs. Both `ws` and `undici` are CommonJS packages whose ES entry points
 * re-export the same objects, so `instanceof` checks across the two forms hold.
 *
 * @param packageName the npm package, e.g. `'ws'`
 * @param neededBy what needs it, named in the error: `'@lifeline/node/ws'`
 * @throws MissingPeerDependencyError when the package cannot be found; any other load error
 *   (a broken install, say) is rethrown unchanged
 * @example
 * ```ts
 * const ws = requirePeer<typeof import('ws')>('ws', '@lifeline/node/ws');
 * ```
 */
export function requirePeer<T>(packageName: string, neededBy: string): T {
  try {
    return requireFromHere(packageName) as T;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    // Only the package itself missing; a missing file inside it is a broken install, not ours to rename.
    if (code === 'MODULE_NOT_FOUND' && String((error as Error).message).includes(`'${packageName}'`)) {
      throw new MissingPeerDependencyError(packageName, neededBy, { cause: error });
    }
    throw error;
  }
}
