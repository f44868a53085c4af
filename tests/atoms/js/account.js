// The JavaScript twin of tests/atoms/sandbox_atoms.py's durable Account: the
// same stored state ("account" type, "ledger" state), so a JavaScript
// incarnation and a Python one read what the other saved.
import { Atom, state } from "radon-actors";

export class Account extends Atom {
  static durableType = "account";
  static states = { ledger: state(() => ({ total: 0, memos: [], payee: null })) };

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
}
