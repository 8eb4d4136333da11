// `@lifeline/core/websocket`: the web-standard WebSocket transport (the constructor is injected) and
// the factories behind each platform's `HAWebSocket` and `haWebSocket()`.
export * from './ha-web-socket.js';
export * from './ha-web-socket-subject.js';
export * from './web-socket-transport.js';
