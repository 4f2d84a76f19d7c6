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
