import type { SessionEvent } from '../resume/client/resumable-transport.js';
import type { ResumeServerEvent } from '../resume/server/resume-server.js';
import type { ServerSessionEvent } from '../resume/server/server-session.js';
import { DIAGNOSTIC_CHANNELS, Diagnostics, errorFields } from './diagnostics.js';

/**
 * What a resumable client session reports: the outcome of each handshake (new, resumed, lost) and
 * how many messages a resume re-sent. Session ids appear (they name a session, they grant
 * nothing); tokens and payloads never do.
 */
export class ClientSessionDiagnostics extends Diagnostics {
  session(event: SessionEvent, replayed: number): void {
    switch (event.type) {
      case 'new':
        this.record('info', DIAGNOSTIC_CHANNELS.session, 'new', 'session created', {
          sessionId: event.sessionId,
        });
        break;
      case 'resumed':
        this.count('lifeline.session.resumes');
        if (replayed > 0) this.count('lifeline.session.replayed', replayed);
        this.record('info', DIAGNOSTIC_CHANNELS.session, 'resumed', 'session resumed', {
          sessionId: event.sessionId,
          resumes: event.resumes,
          replayed,
        });
        break;
      case 'lost':
        this.count('lifeline.session.lost', 1, { reason: event.reason });
        this.record('warn', DIAGNOSTIC_CHANNELS.session, 'lost', 'session lost', {
          sessionId: event.sessionId,
          reason: event.reason,
          unacknowledged: event.unacknowledged.length,
          ...errorFields(event.error),
        });
        break;
      case 'closed':
        this.record('debug', DIAGNOSTIC_CHANNELS.session, 'closed', 'session closed', {
          sessionId: event.sessionId,
          by: event.by,
        });
        break;
    }
  }
}

/** What a resume server reports: refused handshakes and links, store errors, session life. */
export class ServerDiagnostics extends Diagnostics {
  /** Whether per-session events are worth a subscription (someone listens now). */
  get watchesSessions(): boolean {
    return this.active(DIAGNOSTIC_CHANNELS.serverSession);
  }

  server(event: ResumeServerEvent): void {
    switch (event.type) {
      case 'rejected':
        this.count('lifeline.server.rejections', 1, { code: event.code });
        this.record('info', DIAGNOSTIC_CHANNELS.rejection, 'rejected', 'handshake refused', {
          code: event.code,
          sessionId: event.sessionId,
          ...errorFields(event.error),
        });
        break;
      case 'link-violation':
        this.record(
          'warn',
          DIAGNOSTIC_CHANNELS.rejection,
          'link-violation',
          'link refused: peer broke the transport',
          {
            reason: event.reason,
            sessionId: event.sessionId,
            ...errorFields(event.error),
          },
        );
        break;
      case 'shed':
        this.count('lifeline.server.shed');
        this.record('warn', DIAGNOSTIC_CHANNELS.rejection, 'shed', 'handshake refused: store behind (1013)', {
          sessionId: event.sessionId,
          pendingStoreOps: event.pendingStoreOps,
          storeLagMs: event.storeLagMs,
        });
        break;
      case 'link-error':
        this.record('warn', DIAGNOSTIC_CHANNELS.rejection, 'link-error', 'link error', {
          sessionId: event.sessionId,
          ...errorFields(event.error),
        });
        break;
    }
  }

  /** A session store operation failed. */
  storeError(sessionId: string, error: unknown): void {
    this.count('lifeline.server.store_errors');
    this.record('error', DIAGNOSTIC_CHANNELS.storeError, 'store-error', 'session store operation failed', {
      sessionId: sessionId || undefined,
      ...errorFields(error),
    });
  }

  /** One server session's event. */
  serverSession(sessionId: string, event: ServerSessionEvent): void {
    switch (event.type) {
      case 'connect':
        this.record('debug', DIAGNOSTIC_CHANNELS.serverSession, 'connect', 'session connected', {
          sessionId,
        });
        break;
      case 'resume':
        this.count('lifeline.server.resumes');
        this.record('info', DIAGNOSTIC_CHANNELS.serverSession, 'resume', 'session resumed', {
          sessionId,
          takeover: event.takeover,
        });
        break;
      case 'detach':
        this.record('debug', DIAGNOSTIC_CHANNELS.serverSession, 'detach', 'session detached', {
          sessionId,
          ...errorFields(event.error),
        });
        break;
      case 'expire':
        this.record('info', DIAGNOSTIC_CHANNELS.serverSession, 'expire', 'session expired', {
          sessionId,
          unacknowledged: event.unacknowledged.length,
        });
        break;
      case 'close':
        this.record(
          event.by === 'store' ? 'warn' : 'debug',
          DIAGNOSTIC_CHANNELS.serverSession,
          'close',
          'session closed',
          {
            sessionId,
            by: event.by,
            unacknowledged: event.unacknowledged.length,
            ...errorFields(event.error),
          },
        );
        break;
    }
  }
}
