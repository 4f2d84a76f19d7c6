"""The fused LoRA forward: peft's outputs and gradients (exactly in fp32, to bf16 rounding under autocast),
one activation cast per layer input under autocast, and peft's own forward for everything it does not cover."""
import pytest
import torch


def _lora_model(dropout: float = 0.0, fused: bool = True):
    from peft.tuners.lora.layer import Linear as LoraLinear

    from ray_icma.models import apply_lora, lora_config, tiny_random_llama

    model, _ = tiny_random_llama(seed=5)
    torch.manual_seed(1)  # peft draws lora_A from the global generator
    model = apply_lora(model, lora_config(r=4, alpha=8, dropout=dropout, model=model))
    for name, p in model.named_parameters():  # non-zero adapters (peft starts lora_B at 0)
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)
    layers = [m for m in model.modules() if type(m) is LoraLinear]
    if not fused:
        for m in layers:
            del m.forward  # peft's class forward again
    return model.train(), layers


def _loss_and_grads(model, precision: str):
    from ray_icma.precision import autocast

    ids = torch.randint(3, 200, (2, 24), generator=torch.Generator().manual_seed(0))
    model.zero_grad(set_to_none=True)
    with autocast(precision, "cpu"):
        out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return out.logits.detach().float(), float(out.loss), grads


def test_apply_lora_installs_it_on_every_adapter_layer():
    from ray_icma.models.lora_forward import fused_lora_forward

    _, layers = _lora_model()
    assert len(layers) == 2 * 7  # tiny Llama: 2 layers x q, k, v, o, gate, up, down
    assert all(m.forward.__func__ is fused_lora_forward for m in layers)


def test_fp32_matches_peft_outputs_and_gradients():
    fused, _ = _lora_model(fused=True)
    plain, _ = _lora_model(fused=False)
    logits_f, loss_f, grads_f = _loss_and_grads(fused, "fp32")
    logits_p, loss_p, grads_p = _loss_and_grads(plain, "fp32")
    assert torch.allclose(logits_f, logits_p, atol=1e-5, rtol=1e-5)
    assert loss_f == pytest.approx(loss_p, rel=1e-6)
    assert grads_f.keys() == grads_p.keys() and grads_f
    for name in grads_p:
        assert torch.allclose(grads_f[name], grads_p[name], atol=1e-6, rtol=1e-4), name


def test_bf16_autocast_matches_peft_to_bf16_rounding_with_fewer_casts():
    """Same loss and adapter gradients as peft under bf16 autocast (bf16 rounding), and one input cast
    per LoRA layer at most instead of peft's two or three (counted as aten::_to_copy of activations)."""
    from torch.profiler import ProfilerActivity, profile

    fused, _ = _lora_model(fused=True)
    plain, _ = _lora_model(fused=False)
    logits_f, loss_f, grads_f = _loss_and_grads(fused, "bf16")
    logits_p, loss_p, grads_p = _loss_and_grads(plain, "bf16")
    assert loss_f == pytest.approx(loss_p, rel=2e-2)
    assert (logits_f - logits_p).abs().max() < 0.1 * logits_p.abs().max()
    for name in grads_p:
        scale = grads_p[name].abs().max()
        assert (grads_f[name] - grads_p[name]).abs().max() <= 0.1 * scale, name
        assert grads_f[name].dtype == torch.float32  # fp32 master weights, fp32 gradients

    def activation_casts(model) -> int:
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            _loss_and_grads(model, "bf16")
        return sum(e.count for e in prof.key_averages(group_by_input_shape=True)
                   if e.key == "aten::_to_copy" and e.input_shapes and len(e.input_shapes[0]) == 3)

    assert activation_casts(fused) < 0.75 * activation_casts(plain)


def test_training_dropout_runs_on_the_adapters_input_only():
    """With dropout on, the base layer still sees the undropped input: in eval mode (no dropout) the fused
    forward equals peft's, and in train mode the base output part is unchanged while the adapter part moves."""
    fused, layers = _lora_model(dropout=0.5, fused=True)
    layer = layers[0]
    x = torch.randn(2, 5, layer.in_features)
    layer.eval()
    assert torch.allclose(layer(x), type(layer).forward(layer, x), atol=1e-6)
    layer.train()
    torch.manual_seed(0)
    y = layer(x)
    assert not torch.allclose(y, type(layer).forward(layer.eval(), x), atol=1e-4)  # dropout reached the adapter
    with layer.disable_adapter() if hasattr(layer, "disable_adapter") else fused.disable_adapter():
        base_only = layer(x)
    assert torch.allclose(base_only, layer.base_layer(x))


def test_merged_disabled_and_multi_adapter_calls_go_to_peft():
    from peft.tuners.lora.layer import Linear as LoraLinear

    model, layers = _lora_model(fused=True)
    model.eval()
    layer = layers[0]
    x = torch.randn(3, layer.in_features)
    unmerged = layer(x)
    layer.merge()
    assert layer.merged
    assert torch.allclose(layer(x), unmerged, atol=1e-5)  # merged: base layer only (peft's path)
    layer.unmerge()
    with model.disable_adapter():
        assert torch.allclose(layer(x), layer.base_layer(x))
    called = []
    original = LoraLinear.forward

    def spy(self, *args, **kwargs):
        called.append(kwargs.get("adapter_names"))
        return original(self, *args, **kwargs)

    LoraLinear.forward = spy
    try:
        layer(x, adapter_names=["default"] * 3)
        layer(x)
    finally:
        LoraLinear.forward = original
    assert called == [["default"] * 3]  # keyword arguments: peft; a plain call: the fused path
