"""``fedge client``: the edge agent — enrol once, then check in and train when asked."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from fedge.cli.output import configure_logging
from fedge.cli.tls import TLS_ENVIRONMENT, TlsCaOption, TlsIdentityOption, TlsOption, client_tls
from fedge.shared.stopping import Stop, StopSignals

# Each setting can come from the environment instead (a flag wins): systemd's EnvironmentFile or a
# container's env keeps the token off the command line, where any local user could read it.
ENVIRONMENT = {
    "server": "FEDGE_SERVER",
    "data": "FEDGE_DATA",
    "reader": "FEDGE_READER",
    "flower": "FEDGE_FLOWER",
    "token": "FEDGE_TOKEN",
    "name": "FEDGE_NAME",
    "state": "FEDGE_STATE",
    "min_dp_noise": "FEDGE_MIN_DP_NOISE",
    **TLS_ENVIRONMENT,
}


def client(
    server: Annotated[str, typer.Option(envvar=ENVIRONMENT["server"], help="Coordinator address HOST:PORT.")],
    data: Annotated[
        Path | None,
        typer.Option(
            envvar=ENVIRONMENT["data"],
            help="Local data folder (docs/client-data.md); `fedge data split` makes some.",
            show_default=False,
        ),
    ] = None,
    reader: Annotated[
        str | None,
        typer.Option(
            envvar=ENVIRONMENT["reader"],
            help="Instead of --data: MODULE:FUNCTION returning the samples (x, y), MODULE a module or a .py file "
            "(docs/client-data.md).",
            metavar="MODULE:FUNCTION",
            show_default=False,
        ),
    ] = None,
    flower: Annotated[
        str | None,
        typer.Option(
            envvar=ENVIRONMENT["flower"],
            help="Instead of --data: a Flower NumPyClient to run unchanged, MODULE:NAME naming it, its class or a "
            "function that makes one, for tasks with model = 'external' (docs/flower.md).",
            metavar="MODULE:NAME",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar=ENVIRONMENT["token"],
            help="One-time enrolment token: for the first run, or for a coordinator that no longer knows this client.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str, typer.Option(envvar=ENVIRONMENT["name"], help="A name the operator sees in `fedge status`.")
    ] = "",
    state: Annotated[
        Path | None,
        typer.Option(
            envvar=ENVIRONMENT["state"],
            help="Where the credential is kept (default: DATA/.fedge-agent.json; without --data, ./.fedge-agent.json).",
            show_default=False,
        ),
    ] = None,
    exit_when_done: Annotated[
        bool, typer.Option("--exit-when-done", help="Stop once every task has completed.")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Seed for local shuffling.", show_default=False)] = None,
    min_dp_noise: Annotated[
        float,
        typer.Option(
            min=0.0,
            envvar=ENVIRONMENT["min_dp_noise"],
            help="Refuse secure rounds whose on-device DP noise gives this device a noise multiplier under Z "
            "(docs/privacy.md); 0: accept rounds without noise.",
            metavar="Z",
        ),
    ] = 0.0,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    tls_identity: TlsIdentityOption = None,
) -> None:
    """Run the agent until stopped: check in, train on local data when asked, upload the update.

    It survives coordinator restarts and network loss (exponential backoff with jitter).
    """
    from fedge.client.agent import STATE_FILE, Agent, AgentStopped, UnknownCredential, load_credential, save_credential
    from fedge.client.secagg import PrivacyFloor
    from fedge.client.transport import GrpcTransport
    from fedge.simulation import vanish

    stop = StopSignals()
    configure_logging()
    log = logging.getLogger("fedge.client")
    if sum(option is not None for option in (data, reader, flower)) != 1:
        raise typer.BadParameter("expected exactly one of them", param_hint="--data / --reader / --flower")
    trainer, what = _trainer(data, reader, flower)
    state = state or (data or Path()) / STATE_FILE
    # vanish: unchanged outside `fedge simulate --backend grpc --dropout`
    trust = client_tls(tls, tls_ca, tls_identity)
    transport = vanish.wrap(GrpcTransport(server, tls=trust))
    saved = load_credential(state, server, tls=trust is not None)
    credential = saved or _enroll(transport, token, name, stop)
    save_credential(state, server, credential, tls=trust is not None)
    log.info("agent ready: %s, coordinator %s", what, server)

    finished = False  # said once each time the last task completes, so an idle agent is not a mystery

    def report(outcome) -> None:
        nonlocal finished
        if outcome.trained_round is not None:
            log.info("%s", round_line(outcome.trained_round, outcome.metrics))
        if outcome.finished and not finished and not exit_when_done:
            log.info("every task has completed: waiting for new ones (--exit-when-done stops here instead)")
        finished = outcome.finished

    try:
        while True:
            agent = Agent(transport, credential, trainer, seed=seed, floor=PrivacyFloor(min_dp_noise))
            try:
                agent.run(stop, exit_when_done=exit_when_done, on_outcome=report)
                break
            except AgentStopped as error:
                if not (saved and token and isinstance(error, UnknownCredential)):
                    raise typer.Exit(_fail(str(error))) from None
            # the coordinator at that address was set up afresh since: the token given joins this one
            log.warning("the coordinator does not know the credential saved in %s: enrolling with the token", state)
            credential, saved = _enroll(transport, token, name, stop), None
            save_credential(state, server, credential, tls=trust is not None)
    finally:
        transport.close()
    log.info("stopped %s", stop.reason or "as every task has completed")


def _trainer(data: Path | None, reader: str | None, flower: str | None) -> tuple[Any, str]:
    """What trains on this device, and how the log names it."""
    from fedge.client.agent import LocalTrainer
    from fedge.client.flower import FlowerTrainer
    from fedge.client.reader import Reader
    from fedge.shared.data.folder import DataFolder

    if flower is not None:
        return FlowerTrainer.load(flower), f"the Flower client {flower}"
    source = DataFolder.open(data) if data is not None else Reader.open(str(reader))
    return LocalTrainer.on(source), f"{len(source.data)} samples of {source.data.dataset}"


def _enroll(transport, token: str | None, name: str, stop: Stop) -> str:
    from fedge.client.agent import Agent, Backoff
    from fedge.client.transport import TransportError

    if not token:
        raise ValueError(
            "this client has not enrolled with this server yet: pass --token or set "
            f"{ENVIRONMENT['token']} (from `fedge token create`)"
        )
    backoff, nonce = Backoff(), secrets.token_urlsafe(18)
    while not stop.is_set():
        try:
            return Agent.enroll(transport, token, name, nonce=nonce)
        except TransportError as error:
            if not error.retryable:
                raise ValueError(f"enrolment refused: {error.message}") from None
            delay = backoff.next()
            logging.getLogger("fedge.client").warning(
                "enrolment: coordinator unreachable (%s); retrying in %.1f s", error, delay
            )
            stop.wait(delay)
    raise typer.Exit(1)


def _fail(message: str) -> int:
    typer.echo(f"error: {message}", err=True)
    return 2


def round_line(number: int, metrics: Mapping[str, float]) -> str:
    """What the agent did in a round: trained (with its figures), or only scored the model (a scoring round)."""
    if "train_loss" not in metrics and "eval_accuracy" in metrics:
        return f"round {number}: scored the model received: {metrics['eval_accuracy']:.3f} on held-out samples"
    return f"round {number}: trained and reported{figures(metrics)}"


def figures(metrics: Mapping[str, float]) -> str:
    """ " (training loss 0.23, accuracy 0.917; the model received: 0.85 on held-out samples)", or "" without figures."""
    if "train_loss" not in metrics:
        return ""
    trained = f"training loss {metrics['train_loss']:.3g}"
    if "train_accuracy" in metrics:  # a Flower client reports what it likes
        trained += f", accuracy {metrics['train_accuracy']:.3f}"
    if "eval_accuracy" in metrics:
        trained += f"; the model received: {metrics['eval_accuracy']:.3f} on held-out samples"
    return f" ({trained})"
