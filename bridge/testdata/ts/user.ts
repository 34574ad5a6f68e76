// A TypeScript user of the handshaker, as installed from npm: TestTypeScript
// type-checks it (strict) against the package `npm pack` makes.
import netget, { connect, find, Channel, NetgetError, type NetgetRecord, type ChannelCloseEvent } from "netget-handshaker";

export async function chat(): Promise<void> {
  const ng = connect({ endpoint: "https://bridge.example", network: "production" });
  const ch: Channel = await ng.connect("ChatService", { where: { room: "lobby" }, token: "t", peer: "12D3KooW" });
  ch.onmessage = (ev) => {
    const data: string | ArrayBuffer = ev.data;
    if (typeof data === "string") console.log(data.toUpperCase());
  };
  ch.addEventListener("close", (ev: ChannelCloseEvent) => console.log(ev.code, ev.reason, ev.wasClean));
  ch.addEventListener("error", (ev) => console.log(ev.code));
  ch.send("hello");
  ch.send(new Uint8Array([1, 2, 3]));
  ch.send(new ArrayBuffer(8));
  if (ch.readyState === Channel.OPEN && ch.record) console.log(ch.peer, ch.record.meta["room"]);
  for await (const m of ch) {
    if (m instanceof ArrayBuffer) console.log(m.byteLength);
  }
  ch.close(4000, "bye");

  const other = await connect("ChatService");
  other.close();

  const records: NetgetRecord[] = await netget.find("DatabaseService", { limit: 3, timeout: 2000 });
  const n: number = await netget.findStream("DatabaseService", (r, f) => console.log(r.peer, f.elapsed_ms));
  const again: NetgetRecord[] = await find("DatabaseService");
  console.log(records.length, n, again.length);

  const stop: () => void = netget.watch("DatabaseService", {
    where: { region: "eu" },
    onAdd: (r, frame) => console.log("up", r.peer, frame.source),
    onRemove: (peer, reason) => console.log("down", peer.length, reason),
    onError: (e) => console.log(e.code),
  });
  stop();
  for await (const ev of netget.watch("DatabaseService")) {
    if (ev.type === "add") console.log(ev.record.meta);
    else console.log(ev.peer, ev.reason);
    break;
  }
  netget.on("close", (info) => console.log(info.reconnecting, info.delay));

  try {
    await netget.connect("Nobody");
  } catch (e) {
    if (e instanceof NetgetError && e.code === "not_found") console.log(e.message);
  }
  // window.netget, for pages that use the script tag.
  await window.netget.ready;
}

export function misuse(ch: Channel): void {
  // @ts-expect-error: send takes a string or bytes
  ch.send(42);
  // @ts-expect-error: readyState is read-only
  ch.readyState = 3;
  // @ts-expect-error: where is a map of strings
  void netget.connect("ChatService", { where: { room: 7 } });
}
