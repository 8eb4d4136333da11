import { deepStrictEqual as assertEquals } from 'node:assert/strict';

Deno.test('importing the package (and /tcp, /server) touches neither Deno nor WebSocket: both are read when used', async () => {
  const entry = new URL('../src/index.ts', import.meta.url).href;
  const serverEntry = new URL('../src/server.ts', import.meta.url).href;
  const tcpEntry = new URL('../src/tcp.ts', import.meta.url).href;
  const script = [
    // Deno's Node compatibility layer (which loads npm packages such as rxjs) reads the global
    // itself when it starts: start it first, then take the globals away.
    "await import('node:process');",
    'delete globalThis.Deno;',
    'delete globalThis.WebSocket;',
    `const lifeline = await import(${JSON.stringify(entry)});`,
    'const transport = lifeline.tcpTransport({ port: 9 });',
    'const error = await transport.open().catch((e) => e);',
    `const tcp = await import(${JSON.stringify(tcpEntry)});`,
    'const tcpError = await tcp.tcpTransport({ port: 9 }).open().catch((e) => e);',
    `const { createResumeServer } = await import(${JSON.stringify(serverEntry)});`,
    'const server = createResumeServer();',
    'const listenError = await server.listen().catch((e) => e);',
    'await server.close();',
    'console.log(JSON.stringify({ HAWebSocket: typeof lifeline.HAWebSocket, error: error.cause.message, createTcpLink: typeof tcp.createTcpLink, tcpError: tcpError.cause.message, server: listenError.message }));',
  ].join('\n');
  const output = await new Deno.Command(Deno.execPath(), {
    args: ['eval', '--conditions=@lifeline/source', script],
    env: { DENO_NO_UPDATE_CHECK: '1' },
    stdout: 'piped',
    stderr: 'piped',
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assertEquals(output.code, 0, stderr);
  assertEquals(JSON.parse(new TextDecoder().decode(output.stdout)), {
    HAWebSocket: 'function',
    error: 'Deno.connect is not available in this runtime',
    createTcpLink: 'function',
    tcpError: 'Deno.connect is not available in this runtime',
    server: 'Deno is not available in this runtime',
  });
});
