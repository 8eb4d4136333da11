import type { GiveUpReason } from '../policy/retry-decision.js';

/** Why a connection closed. */
export type CloseReason = 'user' | 'detached' | 'peer' | GiveUpReason;

/**
 * The connection's state, as a discriminated union on `status`. Every state carries the budgets
 * left, so a UI can say "reconnecting, attempt 3 of 10".
 */
export type ConnectionState =
  | {
      /** Opening the first link. */
      readonly status: 'connecting';
    }
  | {
      /** A link is up and recovery is enabled. */
      readonly status: 'open';
      /** Successful recoveries so far. */
      readonly recoveries: number;
      readonly recoveriesLeft: number;
    }
  | {
      /** The link failed; waiting for, or making, recovery attempt `attempt` of `maxAttempts`. */
      readonly status: 'recovering';
      readonly attempt: number;
      readonly maxAttempts: number;
      /** The backoff wait before this attempt. */
      readonly delayMs: number;
      readonly recoveriesLeft: number;
      /** The error that started this failure: what the caller will see if recovery gives up. */
      readonly error: unknown;
      /** The error of the last failed attempt (the failure itself before the first attempt). */
      readonly lastError: unknown;
    }
  | {
      /** A link is up, but recovery is suspended: a failure will close the connection. */
      readonly status: 'suspended';
      readonly recoveries: number;
      readonly recoveriesLeft: number;
    }
  | {
      /** Final. `error` is set unless the user closed or detached the connection. */
      readonly status: 'closed';
      readonly reason: CloseReason;
      readonly error?: unknown;
    };

/** The status names, for exhaustive switches. */
export type ConnectionStatus = ConnectionState['status'];

/** The `closed` member of {@link ConnectionState}. */
export type ClosedState = Extract<ConnectionState, { status: 'closed' }>;
