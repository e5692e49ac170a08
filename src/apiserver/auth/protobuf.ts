// The few protobuf bodies this package must read. kubectl's typed clients (`create token`, `auth can-i`,
// `auth whoami`) send built-in kinds as application/vnd.kubernetes.protobuf and do not fall back to JSON
// on a 415, though they accept a JSON answer. A body is the 4 bytes "k8s\0" then a runtime.Unknown
// {1: typeMeta, 2: raw, 3: contentEncoding, 4: contentType}, raw being the object's own message. Field
// numbers are those of the Kubernetes .proto definitions; only the fields the reviews use are read.

export const PROTOBUF = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

export class ProtobufError extends Error {}

type Field = Buffer | number;

/** A message's fields by number; length-delimited fields as Buffers, varints as numbers. */
export function readFields(buf: Buffer): Map<number, Field[]> {
  const out = new Map<number, Field[]>();
  let i = 0;
  const varint = (): number => {
    let v = 0, mul = 1;
    for (;;) {
      if (i >= buf.length) throw new ProtobufError('truncated varint');
      const b = buf[i++];
      v += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return v;
      mul *= 128;
      if (mul > 2 ** 63) throw new ProtobufError('varint too long');
    }
  };
  while (i < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8), wire = key & 7;
    let value: Field;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const len = varint();
      if (i + len > buf.length) throw new ProtobufError('truncated field');
      value = buf.subarray(i, i + len);
      i += len;
    } else if (wire === 1) { i += 8; continue; } else if (wire === 5) { i += 4; continue; } else throw new ProtobufError(`wire type ${wire} is not supported`);
    const list = out.get(field) ?? [];
    list.push(value);
    out.set(field, list);
  }
  return out;
}

const bytes = (m: Map<number, Field[]>, n: number): Buffer | undefined => { const v = m.get(n)?.at(-1); return Buffer.isBuffer(v) ? v : undefined; };
const str = (m: Map<number, Field[]>, n: number): string => bytes(m, n)?.toString('utf8') ?? '';
const strs = (m: Map<number, Field[]>, n: number): string[] => (m.get(n) ?? []).filter(Buffer.isBuffer).map((b) => b.toString('utf8'));
const sub = (m: Map<number, Field[]>, n: number): Map<number, Field[]> | undefined => { const b = bytes(m, n); return b ? readFields(b) : undefined; };

/** The envelope's kind and the object's own message. */
export function unwrap(body: Buffer): { apiVersion: string; kind: string; raw: Map<number, Field[]> } {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw new ProtobufError('not a Kubernetes protobuf body (no "k8s\\0" prefix)');
  const unknown = readFields(body.subarray(4));
  const typeMeta = sub(unknown, 1) ?? new Map();
  return { apiVersion: str(typeMeta, 1), kind: str(typeMeta, 2), raw: readFields(bytes(unknown, 2) ?? Buffer.alloc(0)) };
}

/** A protobuf review body as the JSON object it stands for (the fields this package reads). */
export function reviewFromProtobuf(body: Buffer): Record<string, unknown> {
  const { apiVersion, kind, raw } = unwrap(body);
  const spec = sub(raw, 2) ?? new Map<number, Field[]>();
  if (kind === 'TokenRequest') {
    // TokenRequestSpec: 1 audiences, 3 boundObjectRef, 4 expirationSeconds.
    const seconds = spec.get(4)?.at(-1);
    const bound = sub(spec, 3);
    return { apiVersion, kind, spec: {
      ...(strs(spec, 1).length ? { audiences: strs(spec, 1) } : {}),
      ...(typeof seconds === 'number' ? { expirationSeconds: seconds } : {}),
      ...(bound && str(bound, 1) ? { boundObjectRef: { kind: str(bound, 1), apiVersion: str(bound, 2), name: str(bound, 3) } } : {}),
    } };
  }
  if (kind === 'SelfSubjectAccessReview') {
    // SelfSubjectAccessReviewSpec: 1 resourceAttributes, 2 nonResourceAttributes.
    const r = sub(spec, 1), n = sub(spec, 2);
    const names = ['namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name'];
    return { apiVersion, kind, spec: {
      ...(r ? { resourceAttributes: Object.fromEntries(names.map((name, i) => [name, str(r, i + 1)])) } : {}),
      ...(n ? { nonResourceAttributes: { path: str(n, 1), verb: str(n, 2) } } : {}),
    } };
  }
  // SelfSubjectRulesReviewSpec: 1 namespace.
  if (kind === 'SelfSubjectRulesReview') return { apiVersion, kind, spec: { namespace: str(spec, 1) } };
  return { apiVersion, kind };
}
