// A node:dgram client (independent of dgram-native) run inside a client namespace: broadcasts
// `text` to the responder a few times, listens on replyPort for the whole window and prints
// every reply it saw as one JSON line before exiting.
// Usage: broadcast-peer.ts <text> <serverPort> <replyPort> <windowMs>
import dgram from 'node:dgram';

const [text, serverPort, replyPort, windowMs] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const replies: string[] = [];
const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
socket.on('message', (data) => replies.push(data.toString()));
socket.bind(replyPort, () => {
  socket.setBroadcast(true);
  let sent = 0;
  const resend = setInterval(() => {
    if (sent++ < 3) socket.send(text, serverPort, '255.255.255.255');
  }, 100);
  setTimeout(() => {
    clearInterval(resend);
    console.log(JSON.stringify({ replies }));
    socket.close();
  }, windowMs);
});
