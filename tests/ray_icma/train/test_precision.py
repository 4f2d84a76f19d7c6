"""The precision setting: auto picks bf16 only where the hardware has it; bf16 autocast training
stays close to fp32 (weights and optimizer in fp32); the kernel that runs is reported, not assumed."""
import pytest
import torch

from ray_icma.precision import autocast, cpu_bf16_flags, probe_kernels, resolve_precision

AMX_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx512f amx_bf16 amx_tile avx512_bf16\n"
OLD_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"


def _cpuinfo(tmp_path, text):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return str(path)


def test_cpu_flags_and_auto_choice(tmp_path):
    assert cpu_bf16_flags(_cpuinfo(tmp_path, AMX_CPU)) == ["amx_bf16", "avx512_bf16"]
    assert cpu_bf16_flags(_cpuinfo(tmp_path, OLD_CPU)) == []
    assert cpu_bf16_flags(str(tmp_path / "missing")) == []
    assert resolve_precision("auto", "cpu", cpuinfo=_cpuinfo(tmp_path, OLD_CPU)) == "fp32"  # bf16 would be emulated
    if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert resolve_precision("auto", "cpu", cpuinfo=_cpuinfo(tmp_path, AMX_CPU)) == "bf16"
    assert resolve_precision("fp32", "cpu", cpuinfo=_cpuinfo(tmp_path, AMX_CPU)) == "fp32"  # always overridable
    assert resolve_precision("bf16", "cpu", cpuinfo=_cpuinfo(tmp_path, OLD_CPU)) == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16")


def test_kernel_probe_names_the_bf16_kernel():
    if not cpu_bf16_flags():
        pytest.skip("this CPU has no native bf16 (amx_bf16 / avx512_bf16)")
    kernel = probe_kernels("bf16", "cpu")["kernel"]
    assert "bf16" in kernel or "amx" in kernel, kernel


def _tiny_step_loss(precision: str, device: str = "cpu") -> tuple[float, torch.dtype]:
    from ray_icma.models import tiny_random_llama
    from ray_icma.train import tokenize_row

    model, tok = tiny_random_llama(seed=0)
    model = model.to(device).train()
    ids, labels = tokenize_row(tok, "mol2cap", "CCO", [("CCC", "The molecule is propane.")], "The molecule is ethanol.", 256)
    batch = {"input_ids": torch.tensor([ids], device=device), "labels": torch.tensor([labels], device=device)}
    with autocast(precision, device):
        loss = model(**batch).loss
    loss.backward()
    grad_dtype = next(p for p in model.parameters() if p.grad is not None).grad.dtype
    return float(loss), grad_dtype


def test_bf16_autocast_loss_is_close_to_fp32_and_keeps_fp32_weights():
    fp32, _ = _tiny_step_loss("fp32")
    bf16, grad_dtype = _tiny_step_loss("bf16")
    assert bf16 == pytest.approx(fp32, rel=1e-2)
    assert bf16 != fp32  # autocast really computed in bf16
    assert grad_dtype == torch.float32  # master weights (and so their gradients) stay fp32


@pytest.mark.gpu
def test_bf16_cuda_loss_is_close_to_fp32_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    assert resolve_precision("auto", "cuda") == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    fp32, _ = _tiny_step_loss("fp32", "cpu")
    bf16, grad_dtype = _tiny_step_loss("bf16", "cuda")
    assert bf16 == pytest.approx(fp32, rel=1e-2) and grad_dtype == torch.float32
    assert "cuda" in probe_kernels("bf16", "cuda")["kernel"]


def test_frozen_weights_stored_in_bf16_keep_loss_and_gradients_and_the_adapters_fp32():
    """store_frozen_weights: every frozen weight (base linears, embeddings, norms) bf16, the adapters fp32 and
    their gradients fp32, peft's input cast off (bf16 activations reach the adapters); the bf16-autocast loss
    and adapter gradients stay those of fp32-stored weights up to bf16 rounding of the residual stream."""
    from ray_icma.models import apply_lora, lora_config, tiny_random_llama
    from ray_icma.precision import store_frozen_weights

    def loss_and_grads(convert: bool):
        torch.manual_seed(0)
        model, _ = tiny_random_llama(seed=5)
        model = apply_lora(model, lora_config(r=4, alpha=8, dropout=0.0, model=model))
        for name, p in model.named_parameters():  # non-zero adapters, so lora_B's input matters too
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.02)
        converted = store_frozen_weights(model, "bf16") if convert else 0
        ids = torch.randint(3, 200, (2, 24))
        with autocast("bf16", "cpu"):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        return model, converted, float(loss), grads

    _, _, loss_fp32_store, grads_fp32_store = loss_and_grads(False)
    model, converted, loss_bf16_store, grads_bf16_store = loss_and_grads(True)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert converted == len(frozen) > 0
    dtypes = {n: p.dtype for n, p in model.named_parameters()}
    assert all(dtypes[n] == torch.bfloat16 for n in frozen)
    assert any("norm" in n for n in frozen) and any("embed" in n for n in frozen)
    assert all(d == torch.float32 for n, d in dtypes.items() if "lora_" in n)
    layers = [m for m in model.modules() if hasattr(m, "lora_A")]
    assert layers and not any(m.cast_input_dtype_enabled for m in layers)
    assert loss_bf16_store == pytest.approx(loss_fp32_store, rel=1e-2)
    for name, grad in grads_fp32_store.items():
        other = grads_bf16_store[name]
        assert other.dtype == torch.float32, name
        assert torch.nn.functional.cosine_similarity(grad.flatten(), other.flatten(), dim=0) > 0.98, name
    assert store_frozen_weights(model, "fp32") == 0


def test_fast_lora_dropout_keeps_dropouts_probability_scale_and_seed():
    """CpuFastDropout: drop rate p (to 1/65536), kept values scaled by 1/(1-p), repeatable under a seed,
    gradients through the same mask, identity in eval mode; apply_lora installs it in every adapter."""
    from ray_icma.models import apply_lora, lora_config, tiny_random_llama
    from ray_icma.models.dropout import CpuFastDropout

    drop = CpuFastDropout(p=0.1).train()
    x = torch.ones(400_001, requires_grad=True)
    torch.manual_seed(3)
    y = drop(x)
    dropped = (y == 0).double().mean().item()
    assert abs(dropped - 0.1) < 0.003  # ~6 standard deviations of a binomial mean at n = 400k
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.9))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(sum)/dx = mask / (1 - p): the same mask
    assert not torch.equal(drop(x), y)  # the next call draws a new mask
    torch.manual_seed(3)
    assert torch.equal(drop(x), y)
    assert torch.equal(drop.eval()(x), x)
    model, _ = tiny_random_llama(seed=5)
    model = apply_lora(model, lora_config(r=4, alpha=8, dropout=0.1, model=model))
    layers = [d for m in model.modules() if isinstance(getattr(m, "lora_dropout", None), torch.nn.ModuleDict)
              for d in m.lora_dropout.values()]
    assert layers and all(type(d) is CpuFastDropout and d.p == 0.1 for d in layers)
