// The kill -9 durability check shared by the store tests: a writer process prints `<key> <value>`
// for each write once it is acknowledged; it is killed at a pseudo-random point after a bounded
// number of acknowledgements (so the kill lands while writes are in flight), and what it
// acknowledged is returned for the test to look up in the store.
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Reads acknowledgements until at least `min` + random(`spread`) arrived, SIGKILLs the writer, waits for its exit. */
export async function acknowledgedUntilKilled(child: ChildProcess, min: number, spread: number): Promise<Map<string, string>> {
  const acknowledged = new Map<string, string>();
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const killAfter = min + Math.floor(Math.random() * spread);
  for await (const line of createInterface({ input: child.stdout! })) {
    const [key, value] = line.split(' ');
    acknowledged.set(key!, value!);
    if (acknowledged.size >= killAfter) {
      child.kill('SIGKILL');
      break;
    }
  }
  await exited;
  if (acknowledged.size < killAfter) throw new Error(`the writer exited after ${acknowledged.size} acknowledgements, before the kill at ${killAfter}`);
  return acknowledged;
}
