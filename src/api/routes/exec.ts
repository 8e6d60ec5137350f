// PUT /node/<UID>/exec {cmd, stdin?} (spec 001): the command run as root on the node over SSH with
// the head's key (src/ssh). The answer is application/octet-stream, no envelope: the command's
// stdout, raw, as it comes, then one status line (`\nkeel-exec-status: {"exit":…,"signal":…,
// "stderr":…,"stderr_truncated":…}\n`). A failure before the command runs is an ordinary 502 in the
// envelope, naming the node and the step. A client that goes away ends the remote command. Each run
// is logged: who, node, command, exit status, duration. docs/security.md, "Remote execution".
import { HttpError, badRequest } from '../../http/errors.js';
import { StreamReply } from '../../http/stream-reply.js';
import { mergedAttributes } from '../../model/cluster.js';
import { MAX_STDIN_BYTES, RemoteExecError, runRemote, type RemoteCommand, type RemoteTarget } from '../../ssh/exec.js';
import type { ApiContext } from '../context.js';
import type { Route } from '../route.js';

/** The node attribute naming the port its SSH server listens on (default 22). */
export const SSH_PORT_ATTRIBUTE = '_ssh_port';
/** Seconds each step before the command runs may take, unless the request says otherwise. */
export const EXEC_TIMEOUT_DEFAULT = 15;
const EXEC_TIMEOUT_MAX = 300;

/**
 * Run `command` as root on `target` and answer its output as a StreamReply (stdout, then the
 * status line); a failure before it runs is a 502 naming the node and the step. Logged when it
 * ends: who, the node, `logged` (what may be logged of the command), exit status, duration.
 */
export async function remoteReply(ctx: ApiContext, who: string, target: RemoteTarget, command: Omit<RemoteCommand, 'username'>, logged: Record<string, unknown>): Promise<StreamReply> {
  const started = ctx.clock();
  const entry = { who, node: target.node, ...logged };
  let run;
  try {
    run = await runRemote(target, { ...command, username: 'root' });
  } catch (err) {
    if (!(err instanceof RemoteExecError)) throw err;
    ctx.log.warn({ ...entry, step: err.step, reason: err.message, duration_ms: ctx.clock() - started }, 'node exec failed');
    throw new HttpError(502, err.message);
  }
  let cancelled = false;
  void run.result.then((result) => {
    ctx.log.info({ ...entry, exit: result.exit, signal: result.signal, cancelled, duration_ms: ctx.clock() - started }, 'node exec');
  });
  return new StreamReply(200, { 'Content-Type': 'application/octet-stream', 'Cache-Control': 'no-store' }, run.output, () => {
    cancelled = true;
    run.cancel();
  });
}

export const execRoutes: Route[] = [
  {
    method: 'PUT', path: '/node/:id/exec', access: 'role.fulladmin',
    summary: 'Run a command as root on the node over SSH: stdout streamed raw (application/octet-stream), then a keel-exec-status line',
    body: {
      cmd: { type: 'string', required: true, summary: 'The command line, run by root\'s shell on the node' },
      stdin: { type: 'any', summary: `Standard input of the command (a string of at most ${MAX_STDIN_BYTES} bytes); without it the input is empty` },
      timeout: { type: 'number', summary: `Seconds each step before the command runs may take (connect, handshake, authenticate, exec; default ${EXEC_TIMEOUT_DEFAULT}, at most ${EXEC_TIMEOUT_MAX})` },
    },
    handler: async (req, ctx) => {
      const body = req.body as { cmd: string; stdin?: unknown; timeout?: number };
      if (body.stdin !== undefined && typeof body.stdin !== 'string') throw badRequest(`Field 'stdin' must be a string`);
      if (typeof body.stdin === 'string' && Buffer.byteLength(body.stdin) > MAX_STDIN_BYTES) throw badRequest(`Field 'stdin' must have at most ${MAX_STDIN_BYTES} bytes`);
      const timeout = body.timeout ?? EXEC_TIMEOUT_DEFAULT;
      if (!(timeout > 0 && timeout <= EXEC_TIMEOUT_MAX)) throw badRequest(`Field 'timeout' must be more than 0 and at most ${EXEC_TIMEOUT_MAX}`);
      const node = ctx.model.nodes.resolve(req.params.id!);
      const name = String(node.name ?? node.uid);
      if (typeof node.ip !== 'string') throw badRequest(`Node ${name} has no IP address to reach it over SSH`);
      const portText = mergedAttributes(ctx.store, node)[SSH_PORT_ATTRIBUTE] ?? '22';
      const port = Number(portText);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw badRequest(`Node ${name}: attribute ${SSH_PORT_ATTRIBUTE} is ${JSON.stringify(portText)}, not a port number`);
      return remoteReply(ctx, req.principal!.name, { node: name, host: node.ip, port }, { cmd: body.cmd, stdin: body.stdin, privateKey: ctx.headKey.privateKey(), timeoutMs: timeout * 1000 }, { cmd: body.cmd });
    },
  },
];
