/** Typed upload/readback helpers, uniform packing and a simple size-bucketed buffer pool. */

export type TypedArray = Float32Array | Uint32Array | Int32Array | Float64Array | Uint16Array;
type TypedArrayCtor<T extends TypedArray> = { new (buffer: ArrayBuffer, byteOffset?: number, length?: number): T; BYTES_PER_ELEMENT: number };

/** Storage usage flags (read lazily: in Node, GPUBufferUsage is a global only once a device exists). */
export function storageUsage(): number {
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
}

const align4 = (n: number) => Math.ceil(n / 4) * 4;

/** A storage buffer (also COPY_SRC/DST) of `byteLength` bytes, zero-initialised by WebGPU. */
export function createStorageBuffer(device: GPUDevice, byteLength: number, label?: string): GPUBuffer {
  return device.createBuffer({ size: Math.max(4, align4(byteLength)), usage: storageUsage(), label });
}

/** A storage buffer holding `data` (Float64Array is converted to f32). */
export function uploadBuffer(device: GPUDevice, data: TypedArray, label?: string): GPUBuffer {
  const src = data instanceof Float64Array ? Float32Array.from(data) : data;
  const buffer = device.createBuffer({ size: Math.max(4, align4(src.byteLength)), usage: storageUsage(), label, mappedAtCreation: true });
  new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  buffer.unmap();
  return buffer;
}

/** Copies `byteLength` bytes of `buffer` (from `byteOffset`) to the host. */
export async function readBytes(device: GPUDevice, buffer: GPUBuffer, byteOffset = 0, byteLength = buffer.size - byteOffset): Promise<ArrayBuffer> {
  const size = align4(byteLength);
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'readback' });
  try {
    const enc = device.createCommandEncoder({ label: 'readback' });
    enc.copyBufferToBuffer(buffer, byteOffset, staging, 0, size);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const copy = staging.getMappedRange().slice(0, byteLength);
    staging.unmap();
    return copy;
  } finally {
    staging.destroy();
  }
}

export async function readFloat32(device: GPUDevice, buffer: GPUBuffer, offset = 0, length?: number): Promise<Float32Array> {
  return readTyped(device, buffer, Float32Array, offset, length);
}

export async function readTyped<T extends TypedArray>(device: GPUDevice, buffer: GPUBuffer, ctor: TypedArrayCtor<T>, offset = 0, length?: number): Promise<T> {
  const bpe = ctor.BYTES_PER_ELEMENT;
  const n = length ?? Math.floor((buffer.size - offset * bpe) / bpe);
  return new ctor(await readBytes(device, buffer, offset * bpe, n * bpe));
}

export type UniformField = ['u32' | 'i32' | 'f32', number];

/** Packs scalar fields (in WGSL struct order, all 4 bytes) into a 16-byte-aligned uniform block. */
export function packUniforms(fields: UniformField[]): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const dv = new DataView(buf);
  fields.forEach(([type, v], i) => {
    if (type === 'f32') dv.setFloat32(i * 4, v, true);
    else if (type === 'i32') dv.setInt32(i * 4, v, true);
    else {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`uniform field ${i} = ${v} is not a u32`);
      dv.setUint32(i * 4, v, true);
    }
  });
  return buf;
}

export function uniformBuffer(device: GPUDevice, fields: UniformField[], label?: string): GPUBuffer {
  const data = packUniforms(fields);
  const buffer = device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label });
  device.queue.writeBuffer(buffer, 0, data);
  return buffer;
}

/**
 * Reuses storage buffers by power-of-two size class, so that loops over batches do not allocate.
 * `release` returns a buffer to the pool; `destroy` frees everything.
 */
export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly owned = new Set<GPUBuffer>();

  constructor(readonly device: GPUDevice) {}

  static sizeClass(byteLength: number): number {
    return Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(1, byteLength))));
  }

  acquire(byteLength: number, label?: string): GPUBuffer {
    const cls = BufferPool.sizeClass(byteLength);
    const list = this.free.get(cls);
    const reused = list?.pop();
    if (reused) return reused;
    const b = this.device.createBuffer({ size: cls, usage: storageUsage(), label });
    this.owned.add(b);
    return b;
  }

  release(buffer: GPUBuffer): void {
    if (!this.owned.has(buffer)) throw new Error('BufferPool.release: buffer was not acquired from this pool');
    const list = this.free.get(buffer.size) ?? [];
    if (list.includes(buffer)) throw new Error('BufferPool.release: buffer released twice');
    list.push(buffer);
    this.free.set(buffer.size, list);
  }

  get allocatedBytes(): number {
    let n = 0;
    for (const b of this.owned) n += b.size;
    return n;
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.owned.clear();
    this.free.clear();
  }
}
