"""Secure rounds end to end in-process: the coordinator learns the mean, and nothing else."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from fedge.client.agent import Agent
from fedge.client.secagg import SecAggSession
from fedge.client.transport import InProcessTransport
from fedge.server import rounds, securestate
from fedge.server.config import TaskConfig
from fedge.server.coordinator import Coordinator
from fedge.server.errors import InvalidUpdate
from fedge.shared import codec, secagg
from fedge.shared.privacy import clip_update
from fedge.shared.proto import admin_pb2 as apb
from fedge.shared.proto import coordinator_pb2 as pb
from fedge.simulation.inprocess import TASK, Dropouts, SimulatedClock, play_round

CLIENTS = 8


class FixedTrainer:
    """Returns a known update: client ``i`` sends ``(i + 1) / 10`` plus a fixed pattern."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, spec_json, start, plan, rng, trainable=()):
        pattern = np.random.default_rng(self.index).uniform(-0.5, 0.5, sum(w.size for w in start))
        flat = (self.index + 1) / 10 + pattern
        delta, offset = [], 0
        for w in start:
            delta.append(flat[offset : offset + w.size].reshape(w.shape).astype(np.float32))
            offset += w.size
        return delta, 10, {"train_loss": 0.5, "train_accuracy": (self.index + 1) / 10}


class Recording(InProcessTransport):
    """An in-process transport that keeps every request the coordinator receives."""

    def __init__(self, coordinator, log: list) -> None:
        super().__init__(coordinator)
        self.log = log

    def advertise_keys(self, request):
        self.log.append(("advertise_keys", request.SerializeToString()))
        return super().advertise_keys(request)

    def share_keys(self, request):
        self.log.append(("share_keys", request.SerializeToString()))
        return super().share_keys(request)

    def unmask(self, request):
        self.log.append(("unmask", request.SerializeToString()))
        return super().unmask(request)

    def upload_update(self, header, parts):
        self.log.extend([("upload", header.SerializeToString()), ("upload data", b"".join(parts))])
        return super().upload_update(header, parts)


def secure_federation(tmp_path, min_clients: int = 2, log: list | None = None, holders: int = 1, **options):
    task = TaskConfig(**{
        "name": TASK, "model": "mlp", "input_shape": (8,), "labels": ("a", "b", "c"), "rounds": 3,
        "clients_per_round": CLIENTS, "min_clients": min_clients, "over_selection": 1.0, "secagg": True,
        "secagg_clip": 2.0, **options,
    })  # fmt: skip
    clock = SimulatedClock()
    coordinator = Coordinator([task], tmp_path / "coordinator", clock=clock, holders=holders)
    request = apb.CreateTokensRequest(admin_credential=coordinator.admin_credential, count=CLIENTS)
    transport = Recording(coordinator, log if log is not None else [])
    agents = [
        Agent(transport, Agent.enroll(transport, token), FixedTrainer(i), seed=i)
        for i, token in enumerate(coordinator.create_tokens(request).tokens)
    ]
    return coordinator, agents, clock


def expected_mean(survivors: list[int], start: list[np.ndarray]) -> np.ndarray:
    return np.mean(
        [np.concatenate([d.ravel() for d in FixedTrainer(i)(None, start, None, None)[0]]) for i in survivors], axis=0
    )


@pytest.mark.parametrize("stage", ["advertise", "share", "train", "unmask"])
@pytest.mark.parametrize("dropped", [0, 1, 2])  # of 8 clients: 0%, 12.5%, 25%
def test_unmasked_mean_equals_the_plain_mean_with_dropouts_at_each_stage(tmp_path, stage, dropped):
    coordinator, agents, clock = secure_federation(tmp_path)
    task = coordinator.tasks[TASK]
    start = [w.copy() for w in task.weights]
    plan = {i: stage for i in range(dropped)}
    play_round(coordinator, agents, np.random.default_rng(0), clock, Dropouts(0.0, None, plan=plan, redraw=False))

    # who the coordinator counted: clients dropped at "unmask" had sent their masked input
    counted = list(range(CLIENTS)) if stage == "unmask" else list(range(dropped, CLIENTS))
    assert task.version == 1 and task.last_metrics["clients"] == len(counted)
    got = np.concatenate([(w - s).ravel() for w, s in zip(task.weights, start, strict=True)])
    bound = secagg.Quantizer(2.0, CLIENTS).error_bound(len(counted)) / len(counted)
    np.testing.assert_allclose(got, expected_mean(counted, start), atol=bound + 1e-6)


def test_a_round_that_cannot_be_unmasked_is_retried_not_committed(tmp_path):
    coordinator, agents, clock = secure_federation(tmp_path)
    task = coordinator.tasks[TASK]
    first = task.live.round_id
    plan = {i: "unmask" for i in range(6)}  # only 2 of 8 reveal: below every client's threshold
    dropouts = Dropouts(0.0, None, plan=plan, redraw=False)
    play_round(
        coordinator, agents, np.random.default_rng(0), clock, dropouts, until=lambda: task.live.round_id != first
    )

    assert task.version == 0  # nothing half-committed
    rounds = coordinator.store.query("SELECT phase, reason FROM rounds ORDER BY round_id")
    assert rounds[0]["phase"] == "failed" and "too few shares" in rounds[0]["reason"]


def test_too_few_keys_for_the_threshold_fail_the_round_before_any_share(tmp_path):
    coordinator, agents, clock = secure_federation(tmp_path)
    task = coordinator.tasks[TASK]
    first, threshold = task.live.round_id, task.live.secagg.plan.threshold
    survivors = threshold  # only they turn up: each has threshold - 1 neighbours, too few to split a secret
    play_round(
        coordinator, agents[:survivors], np.random.default_rng(0), clock, until=lambda: task.live.round_id != first
    )

    failed = coordinator.store.query("SELECT phase, reason FROM rounds WHERE round_id = ?", (first,))[0]
    assert failed["phase"] == "failed"
    assert failed["reason"] == (
        f"{survivors} clients advertised keys: each has at most {survivors - 1} neighbours, "
        f"fewer than the {threshold} shares needed to unmask"
    )


def test_the_servers_whole_view_holds_no_plaintext_update(tmp_path):
    log: list[tuple[str, bytes]] = []
    coordinator, agents, clock = secure_federation(tmp_path, log=log)
    task = coordinator.tasks[TASK]
    start = [w.copy() for w in task.weights]
    play_round(
        coordinator, agents, np.random.default_rng(0), clock, Dropouts(0.0, None, plan={0: "train"}, redraw=False)
    )

    rows = b"".join(
        json.dumps([list(r) for r in coordinator.store.query(f"SELECT * FROM {table}")]).encode()
        for table in ("settings", "tokens", "clients", "tasks", "versions", "rounds", "participants")
    )
    seen = b"".join(message for _, message in log) + rows
    for i in range(CLIENTS):
        update = codec.encode(FixedTrainer(i)(None, start, None, None)[0])
        for offset in range(0, len(update) - 16, 997):  # any 16-byte run of any client's plaintext update
            assert update[offset : offset + 16] not in seen


def test_a_single_masked_input_looks_uniform(tmp_path):
    log: list[tuple[str, bytes]] = []
    coordinator, agents, clock = secure_federation(tmp_path, log=log)
    play_round(coordinator, agents, np.random.default_rng(0), clock)
    data = next(m for kind, m in log if kind == "upload data")
    counts = np.bincount(np.frombuffer(data, np.uint8), minlength=256)
    expected = len(data) / 256
    chi_square = float(((counts - expected) ** 2 / expected).sum())
    assert chi_square < 350  # 255 degrees of freedom: p ≈ 1e-4 at 350; the plain quantised update is far above


def secure_session() -> SecAggSession:
    assignment = pb.Assignment(
        task_id="t",
        round_id=7,
        secagg=pb.SecAggPlan(neighbours=4, threshold=2, clip=1.0, max_clients=5, format=secagg.FORMAT),
    )
    session = SecAggSession(assignment, "credential")
    session.index = 0
    peer = secagg.PrivateKey.generate()
    session.peers = {
        j: pb.Peer(index=j, encryption_key=peer.public_bytes(), mask_key=peer.public_bytes()) for j in (1, 2)
    }
    secret, b = secagg.PrivateKey.generate().private_bytes(), bytes(32)
    for j in (1, 2):
        s_share, b_share = secagg.split(secret, 2, [1, 2])[0], secagg.split(b, 2, [1, 2])[0]  # x = 1: for client 0
        session.bundles[j] = secagg.ShareBundle(j, 0, s_share, b_share)
    return session


def test_a_client_refuses_to_reveal_both_secrets_of_one_neighbour():
    with pytest.raises(secagg.RevealRefused, match="either a survivor or dropped"):
        secure_session().unmask_request(pb.UnmaskResponse(survivors=[1, 2], dropped=[1]))


def test_a_client_refuses_a_second_reveal_in_the_same_round():
    session = secure_session()
    session.unmask_request(pb.UnmaskResponse(survivors=[1, 2]))  # b shares of 1 and 2
    with pytest.raises(secagg.RevealRefused, match="already revealed"):
        session.unmask_request(pb.UnmaskResponse(dropped=[1]))  # would add s_sk of 1: refused


# -- differential privacy -------------------------------------------------------------------------
def committed_change(coordinator, start) -> np.ndarray:
    task = coordinator.tasks[TASK]
    return np.concatenate([(w - s).ravel() for w, s in zip(task.weights, start, strict=True)])


def clipped_mean(start, clip: float) -> np.ndarray:
    updates = [clip_update(FixedTrainer(i)(None, start, None, None)[0], clip)[0] for i in range(CLIENTS)]
    return np.mean([np.concatenate([d.ravel() for d in u]) for u in updates], axis=0)


def test_central_dp_clips_every_update_to_the_bound(tmp_path):
    coordinator, agents, clock = secure_federation(tmp_path, secagg=False, dp_clip=0.5)
    start = [w.copy() for w in coordinator.tasks[TASK].weights]
    play_round(coordinator, agents, np.random.default_rng(0), clock)
    # every FixedTrainer update has norm far above 0.5, so the mean of the clipped ones is at most 0.5 long
    change = committed_change(coordinator, start)
    assert 0.3 < np.linalg.norm(change) <= 0.5 + 1e-5


def test_central_dp_noise_has_the_promised_scale_and_epsilon_is_reported(tmp_path):
    coordinator, agents, clock = secure_federation(tmp_path, secagg=False, dp_clip=0.5, dp_noise=2.0)
    task = coordinator.tasks[TASK]
    start = [w.copy() for w in task.weights]
    clipped = clipped_mean(start, 0.5)
    play_round(coordinator, agents, np.random.default_rng(0), clock)
    noise = committed_change(coordinator, start) - clipped
    assert abs(noise.std() / (2.0 * 0.5 / CLIENTS) - 1) < 0.1  # z·C/n on the mean
    first = task.last_metrics["epsilon"]
    play_round(coordinator, agents, np.random.default_rng(1), clock)
    assert 0 < first < task.last_metrics["epsilon"]  # ε grows with every committed round
    assert first == pytest.approx(task.last_metrics["epsilon_round"])


@pytest.mark.parametrize(("dp_noise", "warned"), [(2.0, True), (0.1, False)])
def test_a_cohort_too_small_for_its_dp_noise_is_warned_of_at_the_start(tmp_path, caplog, dp_noise, warned):
    coordinator, _, _ = secure_federation(tmp_path, secagg=False, dp_clip=0.5, dp_noise=dp_noise)
    dim = sum(w.size for w in coordinator.tasks[TASK].weights)
    ratio = dp_noise * dim**0.5 / CLIENTS  # the mlp's ~800 parameters: 7 at z = 2, 0.35 at z = 0.1
    assert (ratio > 1) == warned
    message = f"is {ratio:.3g}× the largest update it averages (dp_clip): expect little learning"
    assert (message in caplog.text) == warned, caplog.text


def test_distributed_dp_under_secure_aggregation_adds_the_promised_noise(tmp_path):
    coordinator, agents, clock = secure_federation(tmp_path, min_clients=CLIENTS, dp_clip=0.5, dp_noise=2.0)
    task = coordinator.tasks[TASK]
    start = [w.copy() for w in task.weights]
    clipped = clipped_mean(start, 0.5)
    play_round(coordinator, agents, np.random.default_rng(0), clock)
    noise = committed_change(coordinator, start) - clipped
    assert abs(noise.std() / (2.0 * 0.5 / CLIENTS) - 1) < 0.1  # the devices' noise sums to z·C
    assert task.last_metrics["epsilon"] > 0


def stored_view(coordinator) -> bytes:
    """Every row of the secure-round tables and every file of the masked sums, as bytes."""
    rows = b"".join(
        json.dumps([[str(v) for v in r] for r in coordinator.store.query(f"SELECT * FROM {table}")]).encode()
        for table in ("secure_rounds",)
    )
    files = coordinator.store.data_dir / "secure"
    return rows + b"".join(p.read_bytes() for p in sorted(files.rglob("*")) if p.is_file())


def step_until(coordinator, agents, condition, limit: int = 1000) -> None:
    """Let agents take one request each in turn until ``condition()`` holds after one of them."""
    for step in range(limit):
        agents[step % len(agents)].attempt()
        coordinator.tick()
        if condition():
            return
    raise AssertionError("the round never reached the point asked for")


def bad_bundles(me: int, peers: list[int], outsider: int) -> dict[str, list[tuple[int, int]]]:
    """(sender, receiver) pairs of share requests that must be refused."""
    return {
        "to a client that is no neighbour": [(me, j) for j in peers[:-1]] + [(me, outsider)],
        "two to one neighbour, none to another": [(me, j) for j in peers[:-1]] + [(me, peers[0])],
        "one missing": [(me, j) for j in peers[:-1]],
        "one in another sender's name": [(me, j) for j in peers[:-1]] + [(outsider, peers[-1])],
    }


def test_share_requests_with_the_wrong_bundles_are_refused_and_keep_nothing(tmp_path):
    coordinator, agents, clock = secure_federation(tmp_path, secagg_neighbours=4)
    task = coordinator.tasks[TASK]
    step_until(coordinator, agents, lambda: task.live.secagg.stage == "share")
    s = task.live.secagg
    credential = agents[0].credential
    me = s.index[coordinator.store.authenticate(credential)]
    peers = s.graph[me]
    outsider = next(j for j in range(len(s.index)) if j != me and j not in peers)
    for what, pairs in bad_bundles(me, peers, outsider).items():
        shares = [pb.EncryptedShare(sender=a, receiver=b, ciphertext=b"sealed") for a, b in pairs]
        request = pb.ShareKeysRequest(credential=credential, task_id=TASK, round_id=s.round_id, shares=shares)
        with pytest.raises(InvalidUpdate, match=f"expected one bundle from {me}"):
            coordinator.share_keys(request)
        assert me not in s.sharers and all(me not in senders for senders in s.bundles.values()), what

    play_round(coordinator, agents, np.random.default_rng(0), clock)
    assert task.version == 1 and task.last_metrics["clients"] == CLIENTS  # its honest request came after


def scribble_unused_sums(store, round_id: int) -> None:
    """Fill the sum files the saved state does not vouch for with junk, as an earlier round's
    bytes would be: a resume must not read them."""
    progress = json.loads(store.load_secure(round_id)["progress"] or "{}")
    for i in (0, 1):
        path = store.secure_sums(TASK) / f"sum-{i}.u32"
        if path.exists() and not (progress.get("inputs") and progress.get("sum") == i):
            path.write_bytes(b"\xab" * path.stat().st_size)


RESTART_POINTS = {  # a moment inside each stage the round can be resumed from
    "share": lambda s: s.stage == "share" and len(s.sharers) >= 3,
    "collect": lambda s: s.stage == "collect" and len(s.inputs) >= 3,
    "unmask": lambda s: s.stage == "unmask" and len(s.revealers) >= 2,
}


@pytest.mark.parametrize("point", RESTART_POINTS)
def test_a_secure_round_resumes_after_a_restart_and_commits_once(tmp_path, point, monkeypatch):
    monkeypatch.setattr(securestate, "CHECKPOINT_S", 1e9)  # the sum is saved only when collecting ends
    log: list[tuple[str, bytes]] = []
    coordinator, agents, clock = secure_federation(tmp_path, log=log)
    task = coordinator.tasks[TASK]
    play_round(coordinator, agents, np.random.default_rng(0), clock)  # round 1 leaves its sum in the task's files
    start, round_id = [w.copy() for w in task.weights], task.live.round_id
    step_until(coordinator, agents, lambda: RESTART_POINTS[point](task.live.secagg))
    view, revealed = stored_view(coordinator), dict(task.live.secagg.b_shares)
    scribble_unused_sums(coordinator.store, round_id)

    # the process dies: nothing is closed or flushed; a new coordinator opens the same data dir
    restarted = Coordinator([task.task], tmp_path / "coordinator", clock=clock)
    for agent in agents:
        agent.transport = Recording(restarted, log)
    resumed = restarted.tasks[TASK]
    assert resumed.live.round_id == round_id and resumed.live.phase == {"collect": "train"}.get(point, point)
    if point == "collect":  # inputs since the last checkpoint were lost: their clients send them again
        assert resumed.live.secagg.inputs == set()
    assert resumed.live.secagg.b_shares == revealed  # every share revealed before the kill, read back
    play_round(restarted, agents, np.random.default_rng(1), clock)

    rounds = restarted.store.query("SELECT round_id, phase FROM rounds ORDER BY round_id")
    assert [(r["round_id"], r["phase"]) for r in rounds[1:2]] == [(round_id, "committed")]  # the same attempt
    assert resumed.version == 2 and resumed.last_metrics["clients"] == CLIENTS
    got = np.concatenate([(w - s).ravel() for w, s in zip(resumed.weights, start, strict=True)])
    bound = secagg.Quantizer(2.0, CLIENTS).error_bound(CLIENTS) / CLIENTS
    np.testing.assert_allclose(got, expected_mean(list(range(CLIENTS)), start), atol=bound + 1e-6)
    # what was kept across the restart held no plaintext update, and is gone once the round closed
    for i in range(CLIENTS):
        update = codec.encode(FixedTrainer(i)(None, start, None, None)[0])
        assert all(update[o : o + 16] not in view for o in range(0, len(update) - 16, 997))
    assert restarted.store.query("SELECT COUNT(*) AS n FROM secure_rounds")[0]["n"] == 0
    secure = tmp_path / "coordinator" / "secure"
    assert sorted(p.relative_to(secure).as_posix() for p in secure.rglob("*") if p.is_file()) == [
        f"sums/{TASK}/sum-0.u32",
        f"sums/{TASK}/sum-1.u32",
    ]  # the round's own files are gone; the task's masked sums stay for its next round


def test_the_tasks_sum_files_go_when_it_completes(tmp_path):
    coordinator, agents, clock = secure_federation(tmp_path)
    sums = coordinator.store.secure_sums(TASK)
    for number in range(3):
        play_round(coordinator, agents, np.random.default_rng(number), clock)
        assert sums.exists() == (number < 2)  # written over round after round, then removed
    assert coordinator.tasks[TASK].completed


def test_the_reveals_log_reads_back_whole_records_and_drops_a_torn_last_one():
    shares = [(3, False, bytes(range(40))), (7, True, bytes(40))]
    first, second = securestate.encode_reveals(5, shares), securestate.encode_reveals(6, shares[:1])
    whole = [(5, 3, False, bytes(range(40))), (5, 7, True, bytes(40))]
    assert list(securestate.decode_reveals(first + second)) == [*whole, (6, 3, False, bytes(range(40)))]
    for cut in range(1, len(second)):  # a kill during the last write
        assert list(securestate.decode_reveals(first + second[:-cut])) == whole
    flipped = bytearray(first + second)
    flipped[-1] ^= 1
    assert list(securestate.decode_reveals(bytes(flipped))) == whole


def test_a_secure_round_still_advertising_at_a_restart_is_retried(tmp_path):
    coordinator, agents, clock = secure_federation(tmp_path)
    task = coordinator.tasks[TASK]
    first = task.live.round_id
    step_until(coordinator, agents, lambda: len(task.live.secagg.keys) >= 2)

    restarted = Coordinator([task.task], tmp_path / "coordinator", clock=clock)
    assert restarted.tasks[TASK].live.round_id != first
    failed = restarted.store.query("SELECT phase, reason FROM rounds WHERE round_id = ?", (first,))[0]
    assert (failed["phase"], failed["reason"]) == ("failed", "coordinator restarted")


def test_a_secure_round_is_failed_not_resumed_when_secagg_is_turned_off_at_the_restart(tmp_path):
    coordinator, agents, clock = secure_federation(tmp_path)
    task = coordinator.tasks[TASK]
    first = task.live.round_id
    step_until(coordinator, agents, lambda: RESTART_POINTS["collect"](task.live.secagg))

    restarted = Coordinator([replace(task.task, secagg=False)], tmp_path / "coordinator", clock=clock)
    for agent in agents:
        agent.transport = InProcessTransport(restarted)
        agent.secure = None  # a client keeps no secure session across its own restart
    plain = restarted.tasks[TASK]
    assert plain.live.round_id != first and plain.live.secagg is None
    failed = restarted.store.query("SELECT phase, reason FROM rounds WHERE round_id = ?", (first,))[0]
    assert (failed["phase"], failed["reason"]) == ("failed", "coordinator restarted")
    play_round(restarted, agents, np.random.default_rng(1), clock)
    assert plain.version == 1 and plain.last_metrics["clients"] == CLIENTS


def test_an_agent_restarted_mid_round_sits_it_out_and_joins_the_next(tmp_path):
    coordinator, agents, clock = secure_federation(tmp_path)
    task = coordinator.tasks[TASK]
    first = task.live.round_id
    step_until(coordinator, agents, lambda: task.live.secagg.stage == "collect")
    # agent 0's process restarts: same credential, fresh keys, no memory of the round
    agents[0] = Agent(agents[0].transport, agents[0].credential, FixedTrainer(0), seed=99)
    outcome = agents[0].attempt()
    assert agents[0].secure is None and agents[0].left == first and outcome.wait_s > 0
    assert "other keys" in outcome.reason

    play_round(coordinator, agents, np.random.default_rng(0), clock)
    assert task.version == 1 and task.last_metrics["clients"] == CLIENTS - 1  # the round went on without it
    play_round(coordinator, agents, np.random.default_rng(1), clock)
    assert task.version == 2 and task.last_metrics["clients"] == CLIENTS  # and it is back for the next


def test_requests_to_unmask_take_at_most_half_the_long_poll_holders(tmp_path):
    """While masked inputs still come, the uploads need the daemon's workers: of 4 holders, 2 may
    hold requests to unmask; a third is answered at once. The held ones hear when inputs close."""
    coordinator, agents, clock = secure_federation(tmp_path, holders=4)
    task = coordinator.tasks[TASK]
    step_until(coordinator, agents, lambda: len(task.live.secagg.inputs) == 3)  # in-process: no long polls
    uploaded = [a for a in agents if a.secure is not None and a.secure.stage == "unmask"][:3]
    assert len(uploaded) == 3
    requests = [a.secure.pending for a in uploaded]
    coordinator.hold_s = 20.0  # as a daemon: far longer than the test
    replies: list[pb.UnmaskResponse] = []
    held = [
        threading.Thread(target=lambda r=r: replies.append(coordinator.unmask(r)), daemon=True) for r in requests[:2]
    ]
    for thread in held:
        thread.start()
    time.sleep(0.3)
    assert all(t.is_alive() for t in held), "two requests to unmask wait for the inputs"
    started = time.monotonic()
    assert coordinator.unmask(requests[2]).retry_after_ms > 0  # no place left: "ask again", at once
    assert time.monotonic() - started < 2
    coordinator.hold_s = 0.0
    others = [a for a in agents if a not in uploaded[:2]]  # stopped as the inputs close: no reveal yet
    step_until(coordinator, others, lambda: task.live.secagg.stage == "unmask")
    for thread in held:
        thread.join(timeout=5)
        assert not thread.is_alive()
    assert len(replies) == 2 and all(r.survivors and not r.retry_after_ms for r in replies)  # the survivors, at once
    play_round(coordinator, agents, np.random.default_rng(0), clock)
    assert task.version == 1


def test_a_client_asking_to_unmask_early_comes_back_about_when_the_last_input_is_due(tmp_path):
    coordinator, agents, _ = secure_federation(tmp_path)
    task = coordinator.tasks[TASK]
    step_until(coordinator, agents, lambda: task.live.secagg.stage == "collect")
    live, now = task.live, [1000.0]
    task.clock = lambda: now[0]
    live.secagg.inputs = {0, 1, 2, 3}  # half of the 8 sharers, one every 50 ms
    live.pace.clear()
    live.pace.extend([999.80, 999.85, 999.90, 999.95])
    waits = [task._until_unmask(live) for _ in range(50)]
    # 4 inputs to come, one every (1000 − 999.8) / 3 s: 267 ms, of which a client waits 50–80 %
    assert all(133 <= w <= 214 for w in waits) and len(set(waits)) > 1
    now[0] = 1030.0  # no input for half a minute: the pace says they are far off
    assert task._until_unmask(live) == rounds.STAGE_WAIT_MAX_MS  # never longer than a second
    live.secagg.stage = "unmask"
    assert task._until_unmask(live) == rounds.STAGE_POLL_MS


def test_a_client_whose_shares_were_not_needed_hears_its_input_counted(tmp_path):
    coordinator, agents, clock = secure_federation(tmp_path)
    task = coordinator.tasks[TASK]
    step_until(coordinator, agents, lambda: agents[0].secure is not None and agents[0].secure.stage == "unmask")
    play_round(coordinator, agents[1:], np.random.default_rng(0), clock)  # the round ends without asking agent 0
    assert task.version == 1 and task.last_metrics["clients"] == CLIENTS  # its masked input was in the sum
    outcome = agents[0].attempt()  # it asks what to reveal only now
    assert (outcome.trained_round, agents[0].secure) == (1, None)  # counted, not "the round moved on"
    assert outcome.metrics == {"train_loss": 0.5, "train_accuracy": 0.1}  # what it reported, for its log


def test_a_client_of_a_failed_secure_round_hears_that_it_moved_on(tmp_path):
    coordinator, agents, clock = secure_federation(tmp_path, min_clients=CLIENTS)
    task = coordinator.tasks[TASK]
    step_until(coordinator, agents, lambda: agents[0].secure is not None and agents[0].secure.stage == "unmask")
    first = task.live.round_id
    clock.skip(task.task.train_deadline_s + task.task.secagg_timeout_s + 1)  # the others never upload
    coordinator.tick()
    assert task.live is None or task.live.round_id != first
    outcome = agents[0].attempt()
    assert outcome.trained_round is None and agents[0].secure is None and task.version == 0


@pytest.mark.parametrize("stage", ["collect", "unmask"])
def test_a_round_whose_cohort_restarted_fails_at_once_not_at_its_deadline(tmp_path, stage):
    """Restarted agents advertise fresh keys: they can send no masked input and reveal no share,
    so the round is retried as soon as the last of them says so (a loopback run resumed after a
    kill waited out the 600 s training deadline)."""
    coordinator, agents, clock = secure_federation(tmp_path)
    task = coordinator.tasks[TASK]
    first = task.live.round_id
    step_until(coordinator, agents, lambda: task.live.secagg.stage == stage and not task.live.secagg.revealers)
    restarted = [Agent(a.transport, a.credential, FixedTrainer(i), seed=100 + i) for i, a in enumerate(agents)]
    for agent in restarted:
        said = agent.attempt().reason  # fresh keys, or (its masked input is in) a check-in out of turn
        assert "other keys" in said or "already reported" in said, said
        coordinator.tick()
    row = coordinator.store.query("SELECT phase, reason FROM rounds WHERE round_id = ?", (first,))[0]
    reason = "selected clients reported" if stage == "collect" else "the other survivors restarted"
    assert row["phase"] == "failed" and reason in row["reason"], dict(row)
    assert clock.skipped == 0 and task.live.round_id != first  # no deadline waited out; the next attempt is open


def test_a_member_that_checks_in_after_its_masked_input_is_counted_out_of_the_reveals(tmp_path):
    """A live secure session asks Unmask, never CheckIn: one that checks in lost its shares."""
    coordinator, agents, _ = secure_federation(tmp_path)
    task = coordinator.tasks[TASK]
    step_until(coordinator, agents, lambda: task.live.secagg.stage == "collect" and task.live.secagg.inputs)
    s = task.live.secagg
    index_of = {i: s.index.get(coordinator.store.authenticate(a.credential)) for i, a in enumerate(agents)}
    sent = next(i for i, member in index_of.items() if member in s.inputs)
    index = index_of[sent]
    restarted = Agent(agents[sent].transport, agents[sent].credential, FixedTrainer(sent), seed=7)
    assert "already reported" in restarted.attempt().reason
    assert s.lost == {index} and index in s.inputs  # its input still counts; its reveals will not come
