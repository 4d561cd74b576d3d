/** Growth helpers for the struct-of-arrays tables: double until the wanted size fits. */

function nextSize(current: number, wanted: number): number {
  let size = Math.max(current, 16);
  while (size < wanted) size *= 2;
  return size;
}

export function growUint32(a: Uint32Array, wanted: number): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(nextSize(a.length, wanted));
  b.set(a);
  return b;
}

export function growUint16(a: Uint16Array, wanted: number): Uint16Array<ArrayBuffer> {
  const b = new Uint16Array(nextSize(a.length, wanted));
  b.set(a);
  return b;
}

export function growUint8(a: Uint8Array, wanted: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(nextSize(a.length, wanted));
  b.set(a);
  return b;
}

export function growFloat64(a: Float64Array, wanted: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(nextSize(a.length, wanted));
  b.set(a);
  return b;
}
