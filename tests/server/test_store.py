"""The store: what requests note in memory reaches the file in time, and a revocation at once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fedge.server.errors import Unauthenticated
from fedge.server.store import DATABASE, Store, StoreUnreadable, digest


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path)
    yield store
    store.close()


def enrolled(store: Store) -> tuple[str, str]:
    return store.enroll(store.create_tokens(1)[0], "test", "")


def test_a_known_credential_is_answered_from_memory_after_the_first_look_up(store):
    client_id, credential = enrolled(store)
    assert store.authenticate(credential) == client_id
    before = store._db.total_changes
    assert [store.authenticate(credential) for _ in range(3)] == [client_id] * 3
    assert store._db.total_changes == before


def test_a_revoked_client_is_refused_at_its_next_request(store):
    client_id, credential = enrolled(store)
    store.authenticate(credential)  # cached
    store.revoke(client_id)
    with pytest.raises(Unauthenticated, match="this client was revoked"):
        store.authenticate(credential)


def test_a_revocation_written_by_another_process_is_refused_at_the_next_request(store, tmp_path):
    client_id, credential = enrolled(store)
    store.authenticate(credential)  # cached by the daemon's store
    operator = Store(tmp_path)  # `fedge token revoke` on the data dir, beside a running daemon
    operator.revoke(client_id)
    operator.close()
    with pytest.raises(Unauthenticated, match="this client was revoked"):
        store.authenticate(credential)


def test_an_unknown_credential_is_refused_every_time(store):
    for _ in range(2):
        with pytest.raises(Unauthenticated, match="unknown credential"):
            store.authenticate("forged")


def last_seen(store: Store, client_id: str) -> float:
    return store.query("SELECT last_seen FROM clients WHERE client_id = ?", (client_id,))[0]["last_seen"]


def test_last_seen_is_written_at_the_next_flush_not_at_each_check_in(store):
    client_id, _ = enrolled(store)
    enrolled_at = last_seen(store, client_id)
    store.touch(client_id, "python-linux")
    assert last_seen(store, client_id) == enrolled_at
    store.flush()
    assert last_seen(store, client_id) > enrolled_at
    platform = store.query("SELECT platform FROM clients WHERE client_id = ?", (client_id,))[0]["platform"]
    assert platform == "python-linux"


def test_what_is_noted_in_memory_is_written_at_close(tmp_path):
    store = Store(tmp_path)
    client_id, _ = enrolled(store)
    enrolled_at = last_seen(store, client_id)
    store.touch(client_id)
    store.close()
    assert last_seen(Store(tmp_path), client_id) > enrolled_at


def participants(store: Store) -> list[tuple]:
    rows = store.query("SELECT client_id, status, num_examples FROM participants ORDER BY client_id")
    return [tuple(r) for r in rows]


def test_participants_are_written_with_the_rounds_next_transition(store):
    round_id, _ = store.open_round("t", 1)
    store.record_participant(round_id, "c-a", "assigned")
    store.record_participant(round_id, "c-b", "assigned")
    store.record_participant(round_id, "c-a", "reported", 12)
    assert participants(store) == []  # nothing written per request
    store.set_phase(round_id, "train")
    assert participants(store) == [("c-a", "reported", 12), ("c-b", "assigned", None)]


def test_a_data_dir_from_before_enrolment_nonces_gains_the_column_and_keeps_its_tokens(tmp_path):
    old = sqlite3.connect(tmp_path / "fedge.sqlite")
    old.execute(
        "CREATE TABLE tokens (token_hash TEXT PRIMARY KEY, created_at REAL NOT NULL, used_at REAL,"
        " revoked_at REAL, client_id TEXT)"
    )
    old.execute("INSERT INTO tokens (token_hash, created_at) VALUES (?, 0)", (digest("fedge-token-old"),))
    old.commit()
    old.close()
    store = Store(tmp_path)
    try:
        client_id, _ = store.enroll("fedge-token-old", "test", "", nonce="n-1")
        again, credential = store.enroll("fedge-token-old", "test", "", nonce="n-1")
        assert again == client_id and store.authenticate(credential) == client_id
    finally:
        store.close()


def damage(path: Path) -> None:
    """Scribble over the schema's page, as a failing disk or a half-finished copy might."""
    data = bytearray(path.read_bytes())
    data[100:4000] = bytes(range(256)) * 15 + bytes(range(60))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["damaged", "not sqlite"])
def test_an_unreadable_store_is_refused_in_one_line_naming_the_file(tmp_path, how):
    Store(tmp_path).close()
    if how == "damaged":
        damage(tmp_path / DATABASE)
    else:
        (tmp_path / DATABASE).write_text("tasks and clients, as I remember them\n" * 200)
    with pytest.raises(StoreUnreadable, match=f"^{tmp_path / DATABASE}: cannot read the coordinator's store") as caught:
        Store(tmp_path)
    assert "restore it from a backup" in str(caught.value)


def test_a_store_that_cannot_be_opened_says_to_check_the_folder(tmp_path):
    (tmp_path / DATABASE).mkdir()  # what root can be refused too; a folder this user may not write reads the same
    with pytest.raises(StoreUnreadable, match="cannot open the coordinator's store") as caught:
        Store(tmp_path)
    assert f"check that {tmp_path} is a folder this user may write" in str(caught.value)
