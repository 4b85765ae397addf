// `teller` in JavaScript: typed RPC from JavaScript to the Rust `account`
// actor. It targets the `acme:bank/transfer-actor` world, which imports
// `acme:bank/account`; deploy it with a link to the account type:
//
//   pigeon deploy teller.wasm --name teller --link acme:bank/account=account
//
// Text commands, one per message, with text replies:
//   deposit NAME N    → `NAME: <new balance>`
//   withdraw NAME N   → `NAME: <new balance>`, or `refused: ...`
//   balance NAME      → `NAME: <balance>`
//
// The imported interface is a module whose functions call the account
// actor picked with `rpc.setTarget`: each is a call message, with the
// exactly-once guarantees of any call made in a turn. WIT `u64` is a BigInt;
// an `err` result is thrown, its value in the error's `payload`.

import { balance, deposit, withdraw } from 'acme:bank/account@0.1.0';
import { setTarget } from 'pigeon:actor/rpc@0.1.0';

const text = new TextDecoder();
const bytes = new TextEncoder();

function refusal(error) {
  const reason = error?.payload;
  switch (reason?.tag) {
    case 'insufficient-funds':
      return `refused: insufficient funds (balance ${reason.val.balance}, requested ${reason.val.requested})`;
    case 'zero-amount':
      return 'refused: zero is not an amount';
    default:
      throw error; // not the account's answer: fail the turn, retry later
  }
}

function amountOf(word) {
  if (!/^[0-9]+$/.test(word ?? '')) throw `teller: amounts are whole numbers, got \`${word}\``;
  return BigInt(word);
}

function run(command, name, amount) {
  setTarget('acme:bank/account', `account/${name}`);
  try {
    switch (command) {
      case 'deposit':
        return `${name}: ${deposit(amountOf(amount))}`;
      case 'withdraw':
        return `${name}: ${withdraw(amountOf(amount))}`;
      case 'balance':
        return `${name}: ${balance()}`;
    }
  } catch (error) {
    return refusal(error);
  }
  throw `teller: unknown command \`${command}\` (try deposit NAME N, withdraw NAME N, balance NAME)`;
}

export const handler = {
  handle(message) {
    const [command, name, amount] = text.decode(message.payload).split(/\s+/).filter((w) => w !== '');
    if (name === undefined) throw 'teller: say `deposit NAME N`, `withdraw NAME N` or `balance NAME`';
    return bytes.encode(run(command, name, amount));
  },
};
