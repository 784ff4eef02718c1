/**
 * GPU timing. With `timestamp-query` the time of each compute pass is measured on the GPU
 * (Dawn's timestamp quantisation is disabled by the device layer); otherwise the wall clock
 * around submit + onSubmittedWorkDone is used, and `source` says so.
 */

export interface TimedPasses {
  /** Seconds spent in the passes recorded with `passDescriptor`. */
  seconds: number;
  source: 'timestamp-query' | 'wall-clock';
}

export class GpuTimer {
  readonly source: 'timestamp-query' | 'wall-clock';
  private querySet: GPUQuerySet | null = null;
  private resolveBuf: GPUBuffer | null = null;
  private readBuf: GPUBuffer | null = null;
  private next = 0;
  private wallStart = 0;

  constructor(
    readonly device: GPUDevice,
    readonly capacity = 256,
    forceWallClock = false,
  ) {
    this.source = device.features.has('timestamp-query') && !forceWallClock ? 'timestamp-query' : 'wall-clock';
    if (this.source === 'timestamp-query') {
      this.querySet = device.createQuerySet({ type: 'timestamp', count: capacity * 2 });
      this.resolveBuf = device.createBuffer({ size: capacity * 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      this.readBuf = device.createBuffer({ size: capacity * 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    }
  }

  /** Starts a measurement (clears earlier pass records). */
  begin(): void {
    this.next = 0;
    this.wallStart = performance.now();
  }

  /** A compute pass descriptor whose begin/end are timestamped (plain descriptor in wall-clock mode). */
  passDescriptor(label?: string): GPUComputePassDescriptor {
    if (!this.querySet) return { label };
    if (this.next >= this.capacity) throw new Error(`GpuTimer: more than ${this.capacity} timed passes in one measurement`);
    const i = this.next++;
    return { label, timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } };
  }

  /** Waits for the submitted work and returns the summed pass time. */
  async end(): Promise<TimedPasses> {
    if (!this.querySet || this.next === 0) {
      await this.device.queue.onSubmittedWorkDone();
      return { seconds: (performance.now() - this.wallStart) / 1000, source: 'wall-clock' };
    }
    const n = this.next;
    const enc = this.device.createCommandEncoder({ label: 'timer resolve' });
    enc.resolveQuerySet(this.querySet, 0, 2 * n, this.resolveBuf!, 0);
    enc.copyBufferToBuffer(this.resolveBuf!, 0, this.readBuf!, 0, 16 * n);
    this.device.queue.submit([enc.finish()]);
    await this.readBuf!.mapAsync(GPUMapMode.READ, 0, 16 * n);
    const ts = new BigInt64Array(this.readBuf!.getMappedRange(0, 16 * n).slice(0));
    this.readBuf!.unmap();
    let ns = 0n;
    for (let i = 0; i < n; i++) ns += ts[2 * i + 1] - ts[2 * i];
    return { seconds: Number(ns) / 1e9, source: 'timestamp-query' };
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolveBuf?.destroy();
    this.readBuf?.destroy();
  }
}
