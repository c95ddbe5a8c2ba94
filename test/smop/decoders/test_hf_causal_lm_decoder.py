import pytest
import torch

from smop.decoders.hf_causal_lm_decoder import HFCausalLMDecoder


@pytest.fixture(scope="module")
def decoder(pretrained):
    torch.manual_seed(0)
    return HFCausalLMDecoder(["audio", "video"], pretrained["llm"], lora_r=4, lora_alpha=8, lora_dropout=0.0)


def _embeds(d, lengths_a=(5, 3), lengths_v=(3, 2), seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(len(lengths_a), max(lengths_a), d, generator=g)
    v = torch.randn(len(lengths_v), max(lengths_v), d, generator=g)
    return {"audio": (a, torch.tensor(lengths_a)), "video": (v, torch.tensor(lengths_v))}


def test_only_lora_and_markers_train(decoder):
    trainable = {n for n, p in decoder.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("boundary.") for n in trainable)
    assert {n for n in trainable if n.startswith("boundary.")} == {"boundary.audio", "boundary.video"}
    # LoRA r=4 on q_proj and v_proj of 2 layers: q (48->48), v (48->24 with 2 KV heads of 12)
    lora = sum(p.numel() for n, p in decoder.named_parameters() if "lora_" in n)
    assert lora == 2 * (4 * (48 + 48) + 4 * (48 + 24))
    vocab = decoder.llm.get_input_embeddings().weight.shape[0]
    assert vocab == len(decoder.tokenizer)  # never resized


def test_loss_covers_only_transcript_and_eos(decoder):
    emb = _embeds(decoder.embed_size())
    text = torch.tensor([[10, 11, 12], [13, -1, -1]])
    loss, stats = decoder(emb, text, torch.tensor([3, 1]))
    assert stats["n_tokens"] == 3 + 1 + 1 + 1  # transcripts + one EOS each
    loss.backward()
    assert decoder.boundary["audio"].grad is not None and torch.isfinite(loss)
    # the loss equals a hand-made CE over the same positions
    inputs = decoder._inputs(emb, [torch.tensor([10, 11, 12, decoder.eos_id]), torch.tensor([13, decoder.eos_id])])
    with torch.no_grad():
        logits = decoder.llm(
            inputs_embeds=inputs.inputs_embeds, attention_mask=inputs.attention_mask, position_ids=inputs.position_ids
        ).logits
        ref = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), inputs.labels[:, 1:].reshape(-1), ignore_index=-100
        )
    assert torch.allclose(loss.detach(), ref, atol=1e-5)


@pytest.mark.parametrize("beam", [1, 3])
def test_batched_generation_equals_one_by_one(decoder, beam):
    emb = _embeds(decoder.embed_size(), (6, 2, 4), (3, 1, 2), seed=1)
    batched = decoder.generate(emb, [8, 8, 8], beam_size=beam)
    for i in range(3):
        one = {m: (x[i : i + 1, : int(n[i])], n[i : i + 1]) for m, (x, n) in emb.items()}
        ((text, score),) = decoder.generate(one, [8], beam_size=beam)
        assert text == batched[i][0]
        assert score == pytest.approx(batched[i][1], abs=1e-3)


def test_output_head_only_sees_contiguous_inputs(decoder):
    # a strided input makes CPU matmul copy the vocabulary matrix per row (25x slower beam prefill)
    seen = []
    hook = decoder.llm.get_output_embeddings().register_forward_pre_hook(lambda m, a: seen.append(a[0].is_contiguous()))
    try:
        decoder.generate(_embeds(decoder.embed_size(), seed=3), [4, 4], beam_size=3)
    finally:
        hook.remove()
    assert len(seen) >= 2 and all(seen)


def test_generation_ignores_the_models_sampling_config(decoder):
    decoder.llm.generation_config.do_sample = True
    decoder.llm.generation_config.temperature = 0.6
    emb = _embeds(decoder.embed_size(), seed=2)
    runs = {tuple(t for t, _ in decoder.generate(emb, [8, 8])) for _ in range(3)}
    assert len(runs) == 1


# Settings an LLM checkpoint's generation_config.json may carry, each of which changes what search finds.
INHERITABLE = dict(
    min_new_tokens=6,
    repetition_penalty=1.8,
    no_repeat_ngram_size=1,
    temperature=0.01,
    length_penalty=-2.0,
    early_stopping=True,
)


def test_generation_settings_come_from_smop_only(pretrained, tmp_path):
    """A checkpoint whose generation_config.json sets min_new_tokens, penalties, ... decodes exactly
    like one that does not; under transformers' own merging those settings change the hypotheses."""
    import json
    import shutil

    from transformers import GenerationConfig

    tainted = tmp_path / "llm"
    shutil.copytree(pretrained["llm"], tainted)
    config = json.loads((tainted / "generation_config.json").read_text())
    (tainted / "generation_config.json").write_text(json.dumps({**config, **INHERITABLE}))
    decoders = []
    for path in (pretrained["llm"], str(tainted)):
        torch.manual_seed(0)
        decoders.append(HFCausalLMDecoder(["audio", "video"], path, lora_r=4, lora_alpha=8, lora_dropout=0.0))
    emb = _embeds(decoders[0].embed_size(), (6, 2, 4), (3, 1, 2), seed=5)
    for beam in (1, 3):
        clean, smop = (d.generate(emb, [8, 8, 8], beam_size=beam) for d in decoders)
        assert smop == clean
        # smop before: the checkpoint's generation config in place, and only these settings given.
        old = dict(
            num_beams=beam,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            length_penalty=1.0,
            early_stopping=beam > 1,
            eos_token_id=decoders[1].eos_id,
            pad_token_id=decoders[1].pad_id,
            bos_token_id=decoders[1].bos_id,
            return_dict_in_generate=True,
            output_scores=True,
        )
        base = decoders[1].llm.get_base_model()
        base.generation_config = GenerationConfig.from_pretrained(tainted)
        try:
            with pytest.MonkeyPatch.context() as m:
                m.setattr(decoders[1], "generation_settings", lambda *a: old)
                inherited = decoders[1].generate(emb, [8, 8, 8], beam_size=beam)
        finally:
            base.generation_config = GenerationConfig()
        assert [t for t, _ in inherited] != [t for t, _ in clean]


def test_early_stopping_is_a_decoding_setting(decoder, monkeypatch):
    seen = []
    generate = type(decoder.llm).generate

    def spy(self, *args, generation_config=None, **kw):
        seen.append(generation_config)
        return generate(self, *args, generation_config=generation_config, **kw)

    monkeypatch.setattr(type(decoder.llm), "generate", spy)
    emb = _embeds(decoder.embed_size(), seed=6)
    default = decoder.generate(emb, [6, 6], beam_size=3)
    early = decoder.generate(emb, [6, 6], beam_size=3, early_stopping=True)
    assert [c.early_stopping for c in seen] == [False, True]  # transformers' default, as the authors decoded
    assert all(c.min_new_tokens == 0 and c.repetition_penalty == 1.0 and c.do_sample is False for c in seen)
    assert len(default) == len(early) == 2


def test_frozen_llm_stays_in_low_precision(pretrained):
    dec = HFCausalLMDecoder(["audio"], pretrained["llm"], lora_r=4, frozen_dtype="bfloat16")
    dec.to(torch.float32)  # ESPnet's main_worker cast
    assert dec.llm.get_input_embeddings().weight.dtype == torch.bfloat16
    lora = [p for n, p in dec.named_parameters() if "lora_" in n]
    assert lora and all(p.dtype == torch.float32 for p in lora)
    assert dec.boundary["audio"].dtype == torch.float32
    emb = {"audio": (torch.randn(1, 4, dec.embed_size()), torch.tensor([4]))}
    loss, _ = dec(emb, torch.tensor([[10, 11]]), torch.tensor([2]))
    loss.backward()
    assert torch.isfinite(loss) and lora[0].grad is not None and lora[0].grad.dtype == torch.float32
    assert dec.prompt_text == "Transcribe speech to text."


def test_an_unknown_modality_is_refused(decoder):
    with pytest.raises(ValueError, match=r"decoder built for \['audio', 'video'\], got embeddings of \['lips'\]"):
        decoder.generate({"lips": _embeds(decoder.embed_size())["audio"]}, [4, 4])


def _real(inputs, i):
    return inputs.inputs_embeds[i, inputs.attention_mask[i].bool()]


def test_one_modality_of_an_audio_visual_decoder_is_read_as_the_one_modality_decoder_reads_it(decoder):
    """An elastic model's ASR or VSR utterance: that modality's tokens and markers, its prompt."""
    emb = _embeds(decoder.embed_size())
    n_prompt = {k: len(decoder.tokenize(p)) for k, p in decoder.prompts().items()}
    bos = int(decoder.bos_id is not None)
    for m in ("audio", "video"):
        alone = decoder._inputs({m: emb[m]})
        assert alone.attention_mask.sum(1).tolist() == [bos + n + 2 + n_prompt[m] for n in emb[m][1].tolist()]
    # per utterance in one batch: each row as it is alone
    rows = ["audio", "audiovisual"]
    mixed = decoder._inputs(emb, row_modalities=rows)
    for i, key in enumerate(rows):
        one = {m: (x[i : i + 1], n[i : i + 1]) for m, (x, n) in emb.items() if m in key or key == "audiovisual"}
        assert torch.equal(_real(mixed, i), _real(decoder._inputs(one), 0))
    with pytest.raises(ValueError, match=r"row modalities \['video'\]: the embeddings hold \['audio'\] only"):
        decoder._inputs({"audio": emb["audio"]}, row_modalities=["audio", "video"])


@pytest.mark.parametrize("beam", [1, 3])
def test_per_utterance_budgets_match_one_by_one(decoder, beam):
    # Different budgets in one batch: each utterance must stop exactly where it would alone.
    emb = _embeds(decoder.embed_size(), (6, 2, 4), (3, 1, 2), seed=4)
    budgets = [2, 5, 3]
    batched = decoder.generate(emb, budgets, beam_size=beam)
    for i in range(3):
        one = {m: (x[i : i + 1, : int(n[i])], n[i : i + 1]) for m, (x, n) in emb.items()}
        ((text, score),) = decoder.generate(one, [budgets[i]], beam_size=beam)
        assert text == batched[i][0] and score == pytest.approx(batched[i][1], abs=1e-3)
        assert len(decoder.tokenize(text)) <= budgets[i] + 1


def test_lora_targets_are_checked_on_the_llms_own_modules(pretrained):
    with pytest.raises(ValueError, match=r"lora_target_modules: \['vv_proj'\] name no module of"):
        HFCausalLMDecoder(["audio"], pretrained["llm"], lora_r=4, lora_target_modules=["q_proj", "vv_proj"])


def test_the_summary_holds_the_lora_as_built(decoder):
    assert decoder.summary() == {
        "type": "HFCausalLMDecoder",
        "llm": "LlamaForCausalLM",
        "frozen_dtype": "float32",
        "lora_r": 4,
        "lora_alpha": 8.0,
        "lora_dropout": 0.0,
        "lora_target_modules": ["q_proj", "v_proj"],
    }
