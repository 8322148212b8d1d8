// The stdio servers the stdio upstream's tests run, as --stdio command lines, and the one answer
// shape they read.

import { ROOT } from "./processes.ts";

const NODE = process.execPath;
/** test/peers/stdio-test-server.ts: crashes, hangs, spawns, echoes its environment on command. */
export const TEST_SERVER = `${NODE} ${ROOT}test/peers/stdio-test-server.ts`;
export const EVERYTHING = `${NODE} ${ROOT}node_modules/@modelcontextprotocol/server-everything/dist/index.js stdio`;
export const MEMORY = `${NODE} ${ROOT}node_modules/@modelcontextprotocol/server-memory/dist/index.js`;

type Text = { content: { text: string }[] };
/** The first text content of a tool result. */
export const textOf = (result: unknown) => (result as Text).content[0]?.text ?? "";
