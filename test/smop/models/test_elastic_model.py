"""An elastic model (issue 21): one checkpoint over rate pairs and modalities.

The chosen rates reach the compressors (the LLM's sequence lengths), every rate pair trains the
shared router and experts in one step, the loss is the pairs' weighted mean, and each utterance
reads only the inputs of its drawn modality."""

import math

import pytest
import torch

from smop.models.elastic import config_grid
from smop.tasks.avsr import SmopAVSRTask
from smop.tasks.config_check import ConfigError
from tiny_experiment import write_train_config

ELASTIC = dict(audio_compressor_conf={"rates": [4, 8]}, video_compressor_conf={"rates": [2, 5]})
TASKS = {"modalities": ["audio", "video", "audiovisual"]}


def _args(tmp_path, pretrained, datadir, **overrides):
    cfg = write_train_config(tmp_path / "c.yaml", pretrained, datadir, **overrides)
    return SmopAVSRTask.get_parser().parse_args(["--config", str(cfg), "--output_dir", str(tmp_path / "exp")])


def _model(tmp_path, pretrained, datadir, **overrides):
    args = _args(tmp_path, pretrained, datadir, **overrides)
    SmopAVSRTask.check_args(args)
    torch.manual_seed(0)
    return SmopAVSRTask.build_model(args)


def _batch(n=2):
    torch.manual_seed(1)
    return dict(
        text=torch.tensor([[5, 6, 7], [5, 6, -1], [7, 6, -1]][:n]),
        text_lengths=torch.tensor([3, 2, 2][:n]),
        speech=torch.randn(n, 16000) * 0.1,
        speech_lengths=torch.tensor([16000, 12000, 9600][:n]),
        video=torch.randn(n, 25, 88, 88),
        video_lengths=torch.tensor([25, 19, 15][:n]),
        utt_id=["spk-a", "spk-b", "spk-c"][:n],
    )


class LLMInputs:
    """Records the LLM's real (unpadded) input length of each utterance, per call."""

    def __init__(self, model):
        self.calls = []
        model.decoder.llm.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        self.calls.append(kwargs["attention_mask"].sum(1).tolist())


def _encoder_lengths(model, batch):
    hidden = model.encode_inputs(batch["speech"], batch["speech_lengths"], batch["video"], batch["video_lengths"])
    return {m: lengths.tolist() for m, (_, lengths) in hidden.items()}


def _fixed_lengths(model, batch):
    """Per utterance, the LLM input length less the modality tokens (BOS, markers, prompt, transcript)."""
    model.eval()
    probe = LLMInputs(model)
    with torch.no_grad():
        model(**batch)
    return probe.calls[0]


def test_the_rate_pair_sets_the_llm_sequence_length(tmp_path, pretrained, datadir):
    model = _model(tmp_path, pretrained, datadir, **ELASTIC)
    assert [model.audio_compressor.rates, model.video_compressor.rates] == [(4, 8), (2, 5)]
    batch = _batch()
    enc = _encoder_lengths(model, batch)
    model.eval()
    probe = LLMInputs(model)
    with torch.no_grad():
        _, stats, _ = model(**batch)
    # one LLM call per rate pair, in the grid's order
    assert sorted(k for k in stats if k.startswith("loss_a")) == [
        "loss_a4_v2",
        "loss_a4_v5",
        "loss_a8_v2",
        "loss_a8_v5",
    ]
    base = [n - math.ceil(a / 4) - math.ceil(v / 2) for n, a, v in zip(probe.calls[0], enc["audio"], enc["video"])]
    for call, (ra, rv) in zip(probe.calls, [(4, 2), (4, 5), (8, 2), (8, 5)]):
        expected = [b + math.ceil(a / ra) + math.ceil(v / rv) for b, a, v in zip(base, enc["audio"], enc["video"])]
        assert call == expected, (ra, rv)
    # decoding at a rate pair: the same lengths
    for ra, rv in [(8, 5), (4, 2)]:
        embeds, _ = model.encode(
            **{k: batch[k] for k in ("speech", "speech_lengths", "video", "video_lengths")},
            rates={"audio": ra, "video": rv},
        )
        assert embeds["audio"][1].tolist() == [math.ceil(a / ra) for a in enc["audio"]]
        assert embeds["video"][1].tolist() == [math.ceil(v / rv) for v in enc["video"]]


def test_the_shared_router_sees_every_rate_in_one_step_and_gets_each_ones_gradient(tmp_path, pretrained, datadir):
    model = _model(tmp_path, pretrained, datadir, **ELASTIC)
    model.train()
    batch = _batch()
    enc = _encoder_lengths(model, batch)
    tokens, grads = [], []

    def seen(module, args, output):
        tokens.append(args[0].shape[0])
        output.register_hook(lambda g: grads.append(float(g.abs().sum())))

    model.projector.routers["audio"].gate.register_forward_hook(seen)
    encoded = []
    for m in ("audio", "video"):
        getattr(model, f"{m}_encoder").register_forward_hook(lambda mod, args, out, m=m: encoded.append(m))
    expert = model.projector.pools["audio"].experts[0][0].weight
    loss, _, _ = model(**batch)
    loss.backward()
    assert encoded == ["audio", "video"]  # the encoders run once for the four rate pairs
    # one routing of the audio tokens per rate pair: rate 4 twice, rate 8 twice
    assert tokens == [sum(math.ceil(a / r) for a in enc["audio"]) for r in (4, 4, 8, 8)]
    assert len(grads) == 4 and all(g > 0 for g in grads)
    assert expert.grad is not None and float(expert.grad.abs().sum()) > 0


def test_the_loss_is_the_weighted_mean_of_the_pairs_and_counts_their_router_losses(tmp_path, pretrained, datadir):
    weights = {"a4_v2": 3.0, "a8_v5": 0.5}
    model = _model(tmp_path, pretrained, datadir, **ELASTIC, model_conf={"rate_pair_weights": weights})
    model.eval()
    with torch.no_grad():
        loss, stats, _ = model(**_batch())
    w = {n: weights.get(n, 1.0) for n in ("a4_v2", "a4_v5", "a8_v2", "a8_v5")}
    expected = sum(w[n] * float(stats[f"loss_{n}"]) for n in w) / sum(w.values())
    assert float(loss) == pytest.approx(expected, rel=1e-6) and float(stats["loss"]) == pytest.approx(expected)
    # each pair's loss holds its routers' losses: the mean CE is below the mean loss by the mean aux loss
    aux = model.projector.lb_loss_weight * float(stats["lb_loss"]) + model.projector.z_loss_weight * float(
        stats["z_loss"]
    )
    assert float(stats["loss_ce"]) + aux == pytest.approx(expected, rel=1e-5)
    assert all(0 <= float(stats[f"acc_{n}"]) <= 1 for n in w)


def test_sampled_pairs_train_one_pair_a_step(tmp_path, pretrained, datadir):
    conf = {"rate_pair_training": "sample", "rate_pair_weights": {"a4_v2": 0, "a4_v5": 0, "a8_v2": 0}}
    model = _model(tmp_path, pretrained, datadir, **ELASTIC, model_conf=conf)
    model.train()
    probe = LLMInputs(model)
    _, stats, _ = model(**_batch())
    assert len(probe.calls) == 1 and [k for k in stats if k.startswith("loss_a")] == ["loss_a8_v5"]
    model.eval()  # validation scores every pair
    with torch.no_grad():
        model(**_batch())
    assert len(probe.calls) == 5


def test_per_rate_projectors_are_an_option(tmp_path, pretrained, datadir):
    model = _model(tmp_path, pretrained, datadir, **ELASTIC, model_conf={"projector_per_rate": True})
    assert list(model.projector.by_rate) == ["a4_v2", "a4_v5", "a8_v2", "a8_v5"]
    assert model.projector_for({"audio": 8, "video": 2}) is model.projector.by_rate["a8_v2"]
    assert any(k.startswith("projector.by_rate.a8_v5.routers.audio") for k in model.state_dict())
    loss, _, _ = model(**_batch())
    loss.backward()
    for name, proj in model.projector.by_rate.items():
        assert proj.routers["video"].gate.weight.grad is not None, name
    # an ASR cell is projected by the pair of its audio rate and the first video rate
    model = _model(tmp_path, pretrained, datadir, **ELASTIC, model_conf={"projector_per_rate": True, **TASKS})
    model.eval()
    used = []
    for name, proj in model.projector.by_rate.items():
        proj.register_forward_hook(lambda mod, args, out, name=name: used.append(name))
    batch = _batch()
    hyps, proj = model.recognize(
        batch["speech"], batch["speech_lengths"], None, None, beam_size=1, max_new_tokens_per_second=2,
        max_new_tokens_min=2, early_stopping=False, modality="audio", audio_rate=8,
    )  # fmt: skip
    assert used == ["a8_v2"] and set(proj.usage) == {"audio"} and len(hyps) == 2


def test_stack_with_several_rates_needs_per_rate_projectors(tmp_path, pretrained, datadir):
    stack = dict(audio_compressor="stack", audio_compressor_conf={"rates": [2, 4]}, projector_conf={"layout": "dedr"})
    with pytest.raises(ValueError, match="projector inputs of different sizes .* model_conf.projector_per_rate: true"):
        _model(tmp_path, pretrained, datadir, **stack)
    model = _model(tmp_path, pretrained, datadir, **stack, model_conf={"projector_per_rate": True})
    sizes = {n: p.routers["audio"].gate.in_features for n, p in model.projector.by_rate.items()}
    assert sizes == {"a2_v2": 64, "a4_v2": 128}


def test_each_utterance_reads_the_inputs_of_its_modality(tmp_path, pretrained, datadir):
    model = _model(tmp_path, pretrained, datadir, model_conf=TASKS)
    prompts = {k: len(model.decoder.tokenize(p)) for k, p in model.decoder.prompts().items()}
    batch = _batch(3)
    enc = _encoder_lengths(model, batch)
    a = [math.ceil(n / 4) for n in enc["audio"]]
    v = [math.ceil(n / 2) for n in enc["video"]]
    lengths = _fixed_lengths(model, batch)  # validation: the modalities in turn, audio, video, audiovisual
    bos, text = 1, [4, 3, 3]  # transcript + EOS
    assert lengths == [
        bos + a[0] + 2 + prompts["audio"] + text[0],
        bos + v[1] + 2 + prompts["video"] + text[1],
        bos + a[2] + 2 + v[2] + 2 + prompts["audiovisual"] + text[2],
    ]
    # in training the modalities are drawn per utterance, with the weights
    model = _model(tmp_path, pretrained, datadir, model_conf={**TASKS, "modality_weights": {"audiovisual": 0}})
    model.train()
    probe = LLMInputs(model)
    _, stats, _ = model(**_batch(3))
    full = [bos + a[i] + 2 + v[i] + 2 + prompts["audiovisual"] + text[i] for i in range(3)]
    assert all(n < f for n, f in zip(probe.calls[0], full))  # never both inputs


def test_one_model_of_one_rate_and_modality_logs_as_before(tmp_path, pretrained, datadir):
    model = _model(tmp_path, pretrained, datadir)
    assert model.rate_pairs == [{"audio": 4, "video": 2}] and model.tasks == ("audiovisual",)
    _, stats, _ = model(**_batch())
    assert not any(k.startswith(("loss_a", "acc_a")) for k in stats)
    assert "elastic" not in model.summary()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(model_conf={"modalities": ["audio", "speech"]}), "model_conf.modalities: ['speech'] cannot be read"),
        (
            dict(modality="audio", model_conf={"modalities": ["audio", "video"]}),
            "model_conf.modalities: ['video'] cannot be read by a model of modality audio",
        ),
        (
            dict(model_conf={**TASKS, "modality_weights": {"avsr": 1}}),
            "model_conf.modality_weights: ['avsr'] not among",
        ),
        (dict(**ELASTIC, model_conf={"rate_pair_weights": {"a4_v3": 1}}), "model_conf.rate_pair_weights: ['a4_v3']"),
        (dict(model_conf={"rate_pair_training": "each"}), "model_conf.rate_pair_training: 'each' is not one of all"),
        (dict(video_compressor_conf={"rates": [2, 2]}), "video_compressor_conf.rates: a list of distinct integers"),
        (dict(audio_compressor_conf={"rate": 4, "rates": [4, 8]}), "audio_compressor_conf: set rate"),
    ],
)
def test_the_grid_is_checked_where_the_config_enters(tmp_path, pretrained, datadir, overrides, message):
    with pytest.raises(ConfigError) as err:
        SmopAVSRTask.check_args(_args(tmp_path, pretrained, datadir, **overrides))
    assert message in str(err.value)


def test_a_null_rate_or_rates_counts_as_unset(tmp_path, pretrained, datadir):
    """--print_config writes both keys, one of them null: the config check, the model and the grid a
    pack records (config_grid) all read the other one."""
    overrides = dict(
        audio_compressor_conf={"rate": None, "rates": [4, 8]},
        video_compressor_conf={"rate": 2, "rates": None},
        model_conf=TASKS,
    )
    args = _args(tmp_path, pretrained, datadir, **overrides)
    SmopAVSRTask.check_args(args)
    model = SmopAVSRTask.build_model(args)
    grid = config_grid({"modality": "audiovisual", **overrides})
    assert grid["rates"] == {"audio": [4, 8], "video": [2]} == model.grid()["rates"]


def test_distributed_modality_sampling_needs_unused_parameters(tmp_path, pretrained, datadir):
    dense = dict(projector="linear", projector_conf={}, unused_parameters=False)
    for conf, refused in (({}, False), (TASKS, True)):
        args = _args(tmp_path, pretrained, datadir, replace=("projector_conf",), model_conf=conf, **dense)
        args.distributed = True  # as ESPnet sets it for several ranks
        if refused:
            with pytest.raises(ValueError, match=r"model_conf.modalities .* needs --unused_parameters true"):
                SmopAVSRTask.build_model(args)
        else:
            SmopAVSRTask.build_model(args)
