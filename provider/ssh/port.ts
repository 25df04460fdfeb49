/**
 * Waiting for a machine's SSH port to accept again (after a reboot or a kexec). While a machine is
 * down its packets are dropped, so one connect attempt hangs until TCP retransmits its SYN (1 s,
 * then 3 s, then 7 s later): a machine back meanwhile would be seen seconds late. Attempts here
 * overlap instead: a new one starts every 50 ms, backing off to 250 ms, and each may take up to
 * 5 s, so a slow link still connects while a listener that just appeared is seen within one
 * interval. The first socket that connects is returned, ready to carry the SSH handshake, and the
 * rest are closed; when none does before the deadline, the last attempt's error.
 */
import * as net from "node:net";
import type { Deadline } from "../wait";

const FIRST_INTERVAL_MS = 50;
const MAX_INTERVAL_MS = 250;
const ATTEMPT_MS = 5000;

/** The first connected socket to host:port, or why none connected before the deadline. */
export function firstAccept(host: string, port: number, deadline: Deadline): Promise<net.Socket | Error> {
    return new Promise((resolve) => {
        const open = new Set<net.Socket>();
        let interval = FIRST_INTERVAL_MS;
        let timer: NodeJS.Timeout | undefined;
        let done = false;
        let last = new Error(`connecting to port ${port} timed out`);
        const finish = (winner: net.Socket | undefined) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            clearTimeout(end);
            for (const s of open) if (s !== winner) s.destroy();
            resolve(winner ?? last);
        };
        const attempt = () => {
            if (done) return;
            const s = net.connect({ host, port, noDelay: true });
            open.add(s);
            s.setTimeout(Math.min(ATTEMPT_MS, deadline.leftMs + 1), () => s.destroy());
            s.once("connect", () => {
                s.setTimeout(0);
                finish(s);
            });
            s.once("close", () => open.delete(s));
            s.on("error", (e) => (last = e));
            timer = setTimeout(attempt, interval);
            interval = Math.min(MAX_INTERVAL_MS, interval * 1.5);
        };
        const end = setTimeout(() => finish(undefined), deadline.leftMs);
        attempt();
    });
}
