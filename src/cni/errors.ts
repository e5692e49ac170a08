// CNI errors as the spec defines them (SPEC.md "Error": code, msg, details), one class for all codes.

export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  NotAvailableLimited: 51,
  // Plugin-specific codes start at 100 (the spec reserves 1-99).
  Internal: 100,
  CheckFailed: 101,
  /** The agent's in-process work after ADD or DEL (server.ts hooks) failed; the ADD was undone. */
  HookFailed: 999,
} as const;

export class CniError extends Error {
  readonly code: number;
  readonly details: string;
  constructor(code: number, msg: string, details = '', options?: { cause?: unknown }) {
    super(msg, options);
    this.code = code;
    this.details = details;
  }
  toJSON(cniVersion: string): Record<string, unknown> {
    const out: Record<string, unknown> = { cniVersion, code: this.code, msg: this.message };
    if (this.details) out.details = this.details;
    return out;
  }
}

/** Wraps any thrown value as a CniError, keeping a CniError's own code. */
export function asCniError(err: unknown, fallbackCode: number = CniCode.Internal): CniError {
  if (err instanceof CniError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new CniError(fallbackCode, msg, '', { cause: err });
}
