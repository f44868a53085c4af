// The JavaScript twin of tests/atoms/sandbox_atoms.py's durable Account: the
// same stored state ("account" type, "ledger" state), so a JavaScript
// incarnation and a Python one read what the other saved.
import { Atom, state } from "radon-actors";

export class Account extends Atom {
  static durableType = "account";
  static states = { ledger: state(() => ({ total: 0, memos: [], payee: null })) };
  // Installed by the runtime before onStart; declared for editors and tsc.
  /** @type {import("radon-actors").State<{total: number, memos: string[], payee: any}>} */
  ledger;

  onStart() {
    this.startedWith = this.ledger.value.total; // loaded before onStart
  }

  async deposit(n, memo = "", save = true) {
    this.ledger.value.total += n;
    if (memo) this.ledger.value.memos.push(memo);
    if (save) await this.ledger.save();
    return this.ledger.value.total;
  }

  balance() {
    return this.ledger.value.total;
  }

  info() {
    const ledger = this.ledger;
    return [ledger.etag, ledger.exists, this.startedWith, ledger.value.memos];
  }

  async clear() {
    await this.ledger.clear();
  }

  async reload() {
    await this.ledger.reload();
    return this.ledger.value.total;
  }

  crash() {
    throw new Error("crash");
  }

  // The Python twin's name, so one test asks both.
  async remind_me(due, period = null) {
    await this.remind("later", { due, period }, "deposit", 100, "reminded");
  }

  async forget_me() {
    return await this.forgetReminder("later");
  }

  async bad_reminder(kind) {
    if (kind === "due") return await this.remind("x", { due: -1 }, "deposit", 1);
    if (kind === "name") return await this.remind("", { due: 1 }, "deposit", 1);
    return await this.remind("x", { due: 1, period: 0 }, "deposit", 1);
  }
}
