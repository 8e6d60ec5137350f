// A request body as an AsyncIterable<Buffer> for routes that stream it (uploads of images,
// kernels, ISOs). The transport pushes what it receives; the stream pauses the transport while
// more than `highWater` bytes wait for the consumer and resumes it below half of that, so an
// upload's memory is bounded whatever the file size. An aborted client makes the iteration throw,
// so the consumer (ChunkStore.stage) abandons the upload without committing anything.

export interface FlowControl {
  pause(): void;
  resume(): void;
}

/** The client went away before the body was complete. */
export class BodyAborted extends Error {
  override readonly name = 'BodyAborted';
  constructor() {
    super('The client closed the connection before the request body was complete');
  }
}

export class BodyStream implements AsyncIterable<Buffer> {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private paused = false;
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  /** Bytes received so far. */
  received = 0;

  constructor(
    private readonly flow: FlowControl,
    private readonly highWater = 1024 * 1024,
  ) {}

  /** The whole body has arrived (the connection can be reused). */
  get complete(): boolean {
    return this.ended;
  }

  /** Called by the transport with each piece; `bytes` must be the stream's own copy. */
  push(bytes: Buffer, isLast: boolean): void {
    if (this.ended || this.failure) return;
    if (bytes.length > 0) {
      this.queue.push(bytes);
      this.queued += bytes.length;
      this.received += bytes.length;
    }
    if (isLast) this.ended = true;
    else if (!this.paused && this.queued > this.highWater) {
      this.paused = true;
      this.flow.pause();
    }
    this.notify();
  }

  /** Undo a pause before the response is written (the transport must read and write again). */
  unpause(): void {
    if (!this.paused) return;
    this.paused = false;
    this.flow.resume();
  }

  fail(err: Error): void {
    if (this.ended || this.failure) return;
    this.failure = err;
    this.notify();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      const next = this.queue.shift();
      if (next) {
        this.queued -= next.length;
        if (this.paused && this.queued <= this.highWater / 2 && !this.failure) {
          this.paused = false;
          this.flow.resume();
        }
        yield next;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
