// Store errors name the key (or prefix, or lease) they concern and keep the cause. `recoverable` marks
// transient faults (etcd unreachable, a timeout, a leader change): the caller retries the same call
// later; anything else is a bug or bad input, and retrying will not help.

export interface StoreErrorOptions {
  key?: string;
  recoverable?: boolean;
  cause?: unknown;
}

export class StoreError extends Error {
  readonly key: string | undefined;
  readonly recoverable: boolean;
  constructor(message: string, opts: StoreErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'StoreError';
    this.key = opts.key;
    this.recoverable = opts.recoverable ?? false;
  }
}

/** The lease expired or was revoked: whatever it guarded (leadership, a node's liveness) is gone. */
export class LeaseLostError extends StoreError {
  readonly leaseId: string;
  constructor(leaseId: string, cause?: unknown) {
    super(`lease ${leaseId} has expired or was revoked`, { cause });
    this.name = 'LeaseLostError';
    this.leaseId = leaseId;
  }
}

/** True for errors worth retrying: a StoreError marked recoverable. */
export function isRecoverable(err: unknown): boolean {
  return err instanceof StoreError && err.recoverable;
}
