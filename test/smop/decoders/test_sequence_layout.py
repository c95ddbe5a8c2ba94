import torch

from smop.decoders.sequence_layout import build_llm_inputs, position_ids_from_mask


def _col(*v):
    return torch.tensor(v, dtype=torch.float32).unsqueeze(-1)


def test_layout_left_padding_labels_and_positions():
    audio = torch.tensor([[[10.0], [11.0], [12.0]], [[13.0], [0.0], [0.0]]])  # lengths 3, 1
    video = torch.tensor([[[20.0], [21.0]], [[22.0], [0.0]]])  # lengths 2, 1
    targets = [torch.tensor([7, 8]), torch.tensor([9])]
    out = build_llm_inputs(
        ["audio", "video"],
        {"video": (video, torch.tensor([2, 1])), "audio": (audio, torch.tensor([3, 1]))},
        {"audio": _col(1, 2), "video": _col(3, 4)},
        torch.tensor([0.0]),
        _col(5, 6),
        targets,
        lambda ids: ids.float().unsqueeze(-1) + 100,
    )
    # BOS <a> A </a> <v> V </v> prompt targets
    row0 = [0, 1, 10, 11, 12, 2, 3, 20, 21, 4, 5, 6, 107, 108]
    row1 = [0, 1, 13, 2, 3, 22, 4, 5, 6, 109]
    pad = len(row0) - len(row1)
    assert out.inputs_embeds[0, :, 0].tolist() == row0
    assert out.inputs_embeds[1, pad:, 0].tolist() == row1
    assert out.inputs_embeds[1, :pad].abs().sum() == 0
    assert out.attention_mask.tolist() == [[1] * 14, [0] * pad + [1] * 10]
    assert out.position_ids[1].tolist() == [0] * pad + list(range(10))
    assert out.labels[0].tolist() == [-100] * 12 + [7, 8]
    assert out.labels[1].tolist() == [-100] * (pad + 9) + [9]


def test_no_bos_single_modality_inference():
    out = build_llm_inputs(
        ["audio", "video"],
        {"video": (_col(20, 21).unsqueeze(0), torch.tensor([2]))},
        {"video": _col(3, 4)},
        None,
        _col(5),
    )
    assert out.inputs_embeds[0, :, 0].tolist() == [3, 20, 21, 4, 5]
    assert out.labels is None


def test_positions_follow_generate_rule():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]
