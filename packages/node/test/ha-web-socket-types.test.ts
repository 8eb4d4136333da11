/**
 * `HAWebSocket`'s types, checked by the TypeScript compiler as a user's project would see them:
 * under the DOM lib an instance is a `WebSocket`, listeners and `on*` handlers get the platform's
 * `MessageEvent`/`CloseEvent` and the custom events their `detail`, the constructor takes
 * `(url, options)`, the browser refuses `resume: true` at compile time, and every `@example` in the
 * WebSocket bindings and `resume()` compiles.
 *
 * The snippets are virtual files beside e2e/ (the workspace package that depends on all four
 * packages), resolved through the `@lifeline/source` condition to the sources.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const virtualDir = join(root, 'e2e', '.type-checks');

/** Names the examples use without defining them, as an application would have them. */
const AMBIENT = `
declare function render(value: unknown): void;
declare function showBanner(text: string): void;
declare function hideBanner(): void;
declare const url: string;
`;

/** Compiles `files` (name -> text) with the workspace's options and returns each file's errors. */
function typeErrors(files: Record<string, string>, types: string[]): Record<string, string[]> {
  const parsed = ts.parseJsonConfigFileContent(
    JSON.parse(readFileSync(join(root, 'tsconfig.base.json'), 'utf8')),
    ts.sys,
    root,
  );
  const options: ts.CompilerOptions = { ...parsed.options, types, noEmit: true, noUnusedLocals: false };
  const virtual = new Map(Object.entries(files).map(([name, text]) => [join(virtualDir, name), text]));
  virtual.set(join(virtualDir, 'ambient.d.ts'), AMBIENT);
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
    const text = virtual.get(resolve(fileName));
    return text === undefined
      ? getSourceFile(fileName, languageVersion, onError, shouldCreate)
      : ts.createSourceFile(fileName, text, languageVersion, true);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (fileName) => virtual.has(resolve(fileName)) || fileExists(fileName);
  const readFile = host.readFile.bind(host);
  host.readFile = (fileName) => virtual.get(resolve(fileName)) ?? readFile(fileName);
  const program = ts.createProgram([...virtual.keys()], options, host);
  const errors: Record<string, string[]> = {};
  for (const name of Object.keys(files)) {
    const source = program.getSourceFile(join(virtualDir, name))!;
    errors[name] = [
      ...program.getSyntacticDiagnostics(source),
      ...program.getSemanticDiagnostics(source),
    ].map((diagnostic) => {
      const { line } = source.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
      return `${line + 1}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
    });
  }
  return errors;
}

/** The ```ts blocks after each `@example` tag in the doc comments of a source file's exports. */
function examplesOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const examples: string[] = [];
  for (const [, comment] of text.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*export /g)) {
    for (const match of comment!.matchAll(/@example\s*\n\s*\*\s*```ts\n([\s\S]*?)\n\s*\*\s*```/g)) {
      examples.push(
        match[1]!
          .split('\n')
          .map((line) => line.replace(/^\s*\* ?/, ''))
          .join('\n'),
      );
    }
  }
  return examples;
}

/** Example files: `export {}` keeps each one a module of its own (no clashes between examples). */
function exampleFiles(file: string, imports = ''): Record<string, string> {
  const examples = examplesOf(file);
  expect(examples.length, `examples in ${file}`).toBeGreaterThan(0);
  return Object.fromEntries(
    examples.map((example, i) => [
      `${file.replaceAll('/', '_')}.${i}.ts`,
      `${example.includes('import ') ? '' : imports}${example}\nexport {};\n`,
    ]),
  );
}

const DOM_ONLY = `
import { HAWebSocket, type HAWebSocketInstance, resume } from '@lifeline/browser';
import { HAWebSocket as DenoHAWebSocket } from '@lifeline/deno';

const url = 'wss://example.com/feed';
// An HAWebSocket is a WebSocket wherever one is expected.
const ws: WebSocket = new HAWebSocket(url);
const fromDeno: WebSocket = new DenoHAWebSocket(url, { resume: resume() });
const list: WebSocket[] = [new HAWebSocket(url, ['v1']), new HAWebSocket(url, 'v1', { maxAttemptsPerFailure: 3 })];
void [ws, fromDeno, list];

const socket = new HAWebSocket(url, { maxAttemptsPerFailure: 20, resume: resume() });
socket.onmessage = (event) => {
  const data: string = event.data;
  void data;
};
socket.onclose = (event) => {
  const code: number = event.code;
  const clean: boolean = event.wasClean;
  void [code, clean];
};
socket.onerror = (event) => {
  const error: unknown = event.error;
  const code: string | undefined = event.code;
  void [error, code];
};
socket.onrecovering = (event) => {
  const attempt: number = event.detail.attempt;
  const maxAttempts: number = event.detail.maxAttempts;
  void [attempt, maxAttempts];
};
socket.addEventListener('message', (event) => {
  const origin: string = event.origin;
  void origin;
});
socket.addEventListener('close', (event) => {
  const reason: string = event.reason;
  void reason;
});
socket.addEventListener('recovered', (event) => {
  if (event.detail.status === 'open') {
    const recoveries: number = event.detail.recoveries;
    void recoveries;
  }
});
socket.addEventListener('dropped', (event) => {
  const error: unknown = event.detail.error;
  void [event.detail.data, error];
});
const listener = (event: CloseEvent) => void event.code;
socket.addEventListener('close', listener);
socket.removeEventListener('close', listener);
socket.addEventListener('some-other-event', (event: Event) => void event.type);
// A WebSocket's own handler fits an HAWebSocket's property.
const standard: WebSocket['onmessage'] = (event) => void event.data;
socket.onmessage = standard;
// The session handle is flat.
const id: string | undefined = socket.session?.id;
const state: 'connecting' | 'open' | 'resuming' | 'closed' | undefined = socket.session?.state;
const resumes: number | undefined = socket.session?.stats.resumes;
socket.session?.events$.subscribe((event) => void event.type);
void [id, state, resumes];
const binaryType: BinaryType = socket.binaryType;
void binaryType;
const typed: HAWebSocketInstance = socket;
void typed;
// send and sendAsync take what WebSocket's send takes (WHATWG WebSockets: BufferSource or Blob or
// USVString), a Blob included; a dropped event's data is what send took.
const sendable: (string | ArrayBuffer | ArrayBufferView | Blob)[] = ['text', new ArrayBuffer(1), new Uint8Array(1), new Blob(['x'])];
for (const data of sendable) {
  socket.send(data);
  void socket.sendAsync(data);
}
const asWebSocket: (data: string | ArrayBuffer | ArrayBufferView | Blob) => void = new HAWebSocket(url).send;
void asWebSocket;
socket.addEventListener('dropped', (event) => {
  const data: string | ArrayBuffer | ArrayBufferView | Blob = event.detail.data;
  void data;
});

// @ts-expect-error: the browser bundles no protocol unless resume() is imported: resume: true is refused.
new HAWebSocket(url, { resume: true });
// @ts-expect-error: so is an options object; pass resume(options).
new HAWebSocket(url, { resume: { maxReplayMessages: 10 } });
// @ts-expect-error: recovering's detail is the recovering state, which has no 'recoveries'.
socket.onrecovering = (event) => void event.detail.recoveries;
// @ts-expect-error: a listener for the close event takes a CloseEvent, not a MessageEvent.
socket.addEventListener('close', (event: MessageEvent) => void event.data);
export {};
`;

const NODE = `
import { HAWebSocket, resume } from '@lifeline/node/ws';

const socket = new HAWebSocket('ws://127.0.0.1:8080', { resume: true });
const other = new HAWebSocket('ws://127.0.0.1:8080', { resume: resume({ maxReplayMessages: 100 }) });
const withOptions = new HAWebSocket('ws://127.0.0.1:8080', { resume: { maxReplayMessages: 100 } });
socket.binaryType = 'nodebuffer';
socket.binaryType = 'fragments';
socket.onmessage = (event) => void event.data;
socket.addEventListener('close', (event) => void event.code);
other.onrecovering = (event) => void event.detail.attempt;
const id: string | undefined = withOptions.session?.id;
void id;
// @ts-expect-error: not a binary type ws knows.
socket.binaryType = 'text';
// A Blob, as WebSocket's send takes (Node's global Blob).
socket.send(new Blob([Buffer.from('x')]));
void socket.sendAsync(new Blob(['x']));
export {};
`;

describe('HAWebSocket types', () => {
  it('under the DOM lib alone (browsers, Deno): assignable to WebSocket, typed events and handlers, resume() only, and the examples of the browser and Deno bindings, of the core and of resume() compile', () => {
    const errors = typeErrors(
      {
        'dom-only.ts': DOM_ONLY,
        ...exampleFiles(
          'packages/core/src/websocket/ha-web-socket.ts',
          "import { defineHAWebSocket } from '@lifeline/core/internal';\n",
        ),
        ...exampleFiles('packages/core/src/resume/client/resume.ts'),
        ...exampleFiles('packages/browser/src/ha-web-socket.ts'),
        ...exampleFiles('packages/deno/src/ha-web-socket.ts'),
      },
      [],
    );
    expect(errors).toEqual(Object.fromEntries(Object.keys(errors).map((name) => [name, []])));
  }, 120_000);

  it("in Node (DOM lib plus Node's types): resume: true and options, ws's binary types, and the examples of @lifeline/node/ws compile", () => {
    const errors = typeErrors({ 'node.ts': NODE, ...exampleFiles('packages/node/src/ws.ts') }, ['node']);
    expect(errors).toEqual(Object.fromEntries(Object.keys(errors).map((name) => [name, []])));
  }, 120_000);
});
