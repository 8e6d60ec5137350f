// Sends a FileReply over a uWS response: status and headers from planFileResponse, an exact
// Content-Length always (uWS writes it from tryEnd's total size, or endWithoutBody's for HEAD),
// and the body with backpressure. Each piece goes to tryEnd as soon as it is read, so a fast
// client is served straight from LMDB's memory map (a stored file's pieces are views of it, not
// copies) into the socket. When the socket is full, tryEnd has sent part of the piece and kept
// nothing: the unsent remainder is either copied (while the process-wide budget for such copies
// allows) or dropped and read again from LMDB when the socket is writable. So memory for N slow readers is bounded by the budget,
// not by N × chunk size.
import type { HttpResponse } from 'uWebSockets.js';
import type { FileReply, ReplyContent } from './file-reply.js';
import { planFileResponse } from './ranges.js';
import { statusLine } from './errors.js';

/** Bytes of unsent remainders held in copies, across all responses of the process. */
export class RemainderBudget {
  private used = 0;
  constructor(public limit: number) {}
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }
  give(bytes: number): void {
    this.used -= bytes;
  }
  get inUse(): number {
    return this.used;
  }
}

/** 64 MiB: 64 backpressured fast clients each keep a 1 MiB remainder; beyond that, re-read. */
export const remainderBudget = new RemainderBudget(64 * 1024 * 1024);

/** What the server tells the sender about the exchange. */
export interface SendTarget {
  res: HttpResponse;
  isAborted(): boolean;
  /** Register a callback for a client abort. */
  onAbort(handler: () => void): void;
}

/**
 * Send `reply` for a GET or HEAD with the request's lower-case headers; closes the content when
 * done. Call it inside the uWS request callback or a `res.cork()`, so that the status line,
 * headers and the start of the body leave in one write.
 */
export function sendFile(target: SendTarget, method: string, requestHeaders: Readonly<Record<string, string>>, reply: FileReply): void {
  const { res } = target;
  const content = reply.content;
  const plan = planFileResponse(content, requestHeaders, reply.headers);
  // Status line and headers in one call: uWS writes the status verbatim followed by CRLF, so the
  // header lines can ride along. Each writeHeader is a native call converting two strings; on the
  // boot path (tens of thousands of range requests per second) those calls were the largest cost
  // after the send itself (bench/RESULTS.md, HTTP fifth round).
  res.writeStatus(`${statusLine(plan.status)}\r\n${plan.headerLines}`);
  if (plan.status === 304 || plan.status === 416 || method === 'HEAD' || plan.end === plan.start) {
    if (plan.status === 304) res.endWithoutBody();
    else if (method === 'HEAD') endHead(res, plan.end - plan.start);
    else res.end();
    content.close();
    return;
  }
  new BodySender(target, content, plan.start, plan.end).send();
}

/**
 * End a HEAD response with the Content-Length a GET would have. Written as a header because this
 * uWS build's `endWithoutBody(length)` never marks the response done, which stalls the next request
 * on a kept-alive connection; without arguments it writes no Content-Length of its own (any
 * argument, even undefined, is read as a length).
 */
export function endHead(res: HttpResponse, contentLength: number): void {
  res.writeHeader('Content-Length', String(contentLength));
  res.endWithoutBody();
}

class BodySender {
  private readonly total: number;
  /** A copy of (or, for stable content, a view on) bytes not yet sent, starting at body offset heldAt. */
  private held: Buffer | undefined;
  private heldAt = 0;
  private heldCopied = 0;
  private finished = false;

  constructor(
    private readonly target: SendTarget,
    private readonly content: ReplyContent,
    private readonly start: number,
    end: number,
  ) {
    this.total = end - start;
  }

  /**
   * Send what the socket takes now. Most replies end here; only one the socket could not take
   * whole waits for onWritable (and must stop on an abort), so only then are handlers registered.
   */
  send(): void {
    if (this.pump()) return;
    const { res } = this.target;
    this.target.onAbort(() => this.finish());
    res.onWritable(() => {
      let ok = false;
      res.cork(() => (ok = this.pump()));
      return ok;
    });
  }

  /** Send until done or the socket is full; true when nothing is left waiting. */
  pump(): boolean {
    const { res } = this.target;
    while (!this.finished) {
      if (this.target.isAborted()) {
        this.finish();
        return true;
      }
      const sent = res.getWriteOffset();
      let piece: Buffer;
      let volatile = false;
      if (this.held && sent >= this.heldAt && sent < this.heldAt + this.held.length) {
        piece = this.held.subarray(sent - this.heldAt);
      } else {
        this.dropHeld();
        piece = this.content.piece(this.start + sent, this.start + this.total);
        volatile = true;
      }
      const [ok, done] = res.tryEnd(piece, this.total);
      if (done) {
        this.finish();
        return true;
      }
      if (ok) continue;
      // The socket is full: tryEnd sent what it could and kept nothing.
      if (volatile) this.keepRemainder(piece.subarray(res.getWriteOffset() - sent), res.getWriteOffset());
      return false;
    }
    return true;
  }

  private keepRemainder(rest: Buffer, at: number): void {
    if (this.content.stable) {
      this.held = rest;
      this.heldAt = at;
    } else if (remainderBudget.take(rest.length)) {
      this.held = Buffer.from(rest);
      this.heldAt = at;
      this.heldCopied = rest.length;
    }
    // Else over budget: nothing is kept; the piece is read again from LMDB when the socket is writable.
  }

  private dropHeld(): void {
    if (this.heldCopied) remainderBudget.give(this.heldCopied);
    this.held = undefined;
    this.heldCopied = 0;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.dropHeld();
    this.content.close();
  }
}
