"""What `fedge client` logs for a round it trained: the figures it reported."""

from __future__ import annotations

from fedge.cli.client import figures, round_line


def test_a_round_is_logged_with_its_training_figures_and_the_held_out_score_when_there_is_one():
    trained = {"train_loss": 0.2345, "train_accuracy": 0.9171}
    assert figures(trained) == " (training loss 0.234, accuracy 0.917)"
    held = {**trained, "eval_loss": 0.4, "eval_accuracy": 0.85}
    assert figures(held) == " (training loss 0.234, accuracy 0.917; the model received: 0.850 on held-out samples)"
    assert figures({}) == ""


def test_a_scoring_round_is_logged_as_scored_not_trained():
    trained = {"train_loss": 0.2345, "train_accuracy": 0.9171}
    assert round_line(3, trained) == "round 3: trained and reported (training loss 0.234, accuracy 0.917)"
    scored = {"eval_loss": 0.4, "eval_accuracy": 0.85}
    assert round_line(31, scored) == "round 31: scored the model received: 0.850 on held-out samples"


def test_a_flower_clients_round_is_logged_with_the_figures_it_reported():
    assert round_line(3, {"train_loss": 0.25}) == "round 3: trained and reported (training loss 0.25)"
