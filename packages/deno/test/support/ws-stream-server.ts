// A WebSocket server run as a child Deno process, so tests can kill it with SIGKILL mid-stream
// and start it again on the same port. Protocol (text messages):
//   client "n"           -> server replies "echo:n"
//   server, every tickMs -> "tick:<k>", k counting from 0 per connection
// Prints {"port": P} on stdout once listening.
const port = Number(Deno.args[0] ?? 0);
const tickMs = Number(Deno.args[1] ?? 5);
Deno.serve(
  {
    hostname: '127.0.0.1',
    port,
    onListen: ({ port }) => console.log(JSON.stringify({ port })),
  },
  (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    let tick = 0;
    let timer: ReturnType<typeof setInterval> | undefined;
    socket.onopen = () => {
      timer = setInterval(() => {
        if (socket.readyState === WebSocket.OPEN) socket.send(`tick:${tick++}`);
      }, tickMs);
    };
    socket.onmessage = (event) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(`echo:${event.data}`);
    };
    socket.onclose = () => clearInterval(timer);
    socket.onerror = () => clearInterval(timer);
    return response;
  },
);
