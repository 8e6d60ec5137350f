// A reply whose body is produced as it is sent and whose length is not known in advance (the output
// of a child process: git's smart HTTP). Sent with chunked transfer encoding; each piece waits for
// the socket to drain before the next is pulled, so a slow client slows the producer instead of
// filling memory.
import { statusLine } from './errors.js';
import type { SendTarget } from './send-file.js';

export class StreamReply {
  constructor(
    readonly status: number,
    readonly headers: Readonly<Record<string, string>>,
    /** The body; pulled one piece at a time, only while the socket keeps up. */
    readonly body: AsyncIterable<Buffer>,
    /** Stop the producer: called once if the client goes away before the body ends. */
    readonly cancel: () => void = () => {},
  ) {}
}

/** Send `reply`; call inside the uWS request callback or a cork (status and headers go out together). */
export function sendStream(target: SendTarget, method: string, reply: StreamReply): void {
  const { res } = target;
  res.writeStatus(statusLine(reply.status));
  for (const [key, value] of Object.entries(reply.headers)) res.writeHeader(key, value);
  if (method === 'HEAD') {
    reply.cancel();
    res.endWithoutBody();
    return;
  }
  void new StreamSender(target, reply).pump();
}

class StreamSender {
  /** Resolves the wait for a writable socket; also called on an abort. */
  private wake: (() => void) | undefined;

  constructor(
    private readonly target: SendTarget,
    private readonly reply: StreamReply,
  ) {
    target.onAbort(() => {
      reply.cancel();
      this.resume();
    });
  }

  async pump(): Promise<void> {
    const { res } = this.target;
    try {
      for await (const piece of this.reply.body) {
        if (this.target.isAborted()) return;
        if (piece.length === 0) continue;
        let drained = true;
        res.cork(() => (drained = res.write(piece)));
        // uWS keeps what the socket did not take; wait until it is sent before pulling more.
        if (!drained) await this.writable();
      }
      if (!this.target.isAborted()) res.cork(() => res.end());
    } catch {
      // The producer failed mid-body: the status line is long gone, so the only signal left is
      // an incomplete chunked body.
      if (!this.target.isAborted()) res.close();
    }
  }

  private writable(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.target.res.onWritable(() => {
        this.resume();
        return true;
      });
    });
  }

  private resume(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
