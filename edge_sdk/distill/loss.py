"""The distillation loss: cross-entropy on the labels plus temperature-softened KL to the teacher.

    loss = alpha * CE(z_s, y) + (1 - alpha) * T^2 * KL(p_t || p_s),
    p_s = softmax(z_s / T),  p_t = softmax(z_t / T)

The design writes the KL term as `KL(softmax(z_s/T) || softmax(z_t/T))`, i.e. "student against
teacher". What is implemented is Hinton et al.'s form, the one every reference implementation
uses (the book's `nn.KLDivLoss()(log_softmax(z_s/T), softmax(z_t/T))`, DistilBERT's): the
divergence of the student's distribution from the teacher's, sum_c p_t(c) * log(p_t(c) / p_s(c)),
summed over classes and averaged over the batch. Its gradient w.r.t. z_s is (p_s - p_t) / T, so
T^2 keeps the soft term's gradient on the same scale as the CE term's whatever T is.

`hidden_state_loss` is the optional intermediate term (PKD / TinyBERT): each student layer's
output is pulled towards the output of the teacher layer it replaces.
"""

from __future__ import annotations


def distillation_loss(student_logits, teacher_logits, labels, alpha: float, temperature: float):
    """Scalar loss for a batch: `student_logits`, `teacher_logits` (batch, classes); `labels` (batch,)."""
    import torch.nn.functional as F

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    ce = F.cross_entropy(student_logits, labels)
    t = float(temperature)
    kl = F.kl_div(F.log_softmax(student_logits / t, dim=-1),
                  F.log_softmax(teacher_logits.to(student_logits.dtype) / t, dim=-1),
                  reduction="batchmean", log_target=True)  # log_target: no log(0) for confident teachers
    return alpha * ce + (1.0 - alpha) * t * t * kl


def hidden_state_loss(student_hidden, teacher_hidden, layer_map, attention_mask):
    """Mean squared error between each student layer's output and the teacher layer it stands for.

    `student_hidden`/`teacher_hidden`: the models' `hidden_states` (embeddings first, then one per
    layer); `layer_map[j]`: the index in `teacher_hidden` that student layer j should reproduce.
    Padding positions are left out; the result is averaged over layers, tokens and features.
    """
    mask = attention_mask.unsqueeze(-1).to(student_hidden[0].dtype)
    total = 0.0
    for j, t in enumerate(layer_map):
        diff = (student_hidden[j + 1] - teacher_hidden[t].to(student_hidden[j + 1].dtype)) ** 2
        total = total + (diff * mask).sum() / (mask.sum() * diff.shape[-1])
    return total / len(layer_map)
