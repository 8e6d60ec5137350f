// unbzip2-stream ships no types: a function returning a classic (through) stream.
declare module 'unbzip2-stream' {
  import type { Stream } from 'node:stream';
  export default function unbzip2(): Stream & NodeJS.WritableStream;
}
