"""In-context molecule tuning: LoRA on ICMA prompts with Ray Train (DeepSpeed ZeRO 2/3 or DDP).

    from ray_icma.train import load_train_config, run_training
    result = run_training(load_train_config("configs/train/smollm2_135m/icmt_mol2cap.yaml", ["optim.max_steps=10"]))
    print(result.adapter_dir, result.loss_history[-1])
"""
from ray_icma.train.collate import IGNORE_INDEX, global_batches, tokenize_row, tokenize_rows
from ray_icma.train.config import TrainConfig, load_train_config
from ray_icma.train.deepspeed_config import deepspeed_config
from ray_icma.train.export import export_adapter, export_model, merge_adapter, write_model_card
from ray_icma.train.trainer import TrainResult, build_train_rows, build_trainer, read_loss_history, run_training

__all__ = [
    "TrainConfig",
    "TrainResult",
    "load_train_config",
    "build_train_rows",
    "build_trainer",
    "run_training",
    "export_adapter",
    "merge_adapter",
    "export_model",
    "write_model_card",
    "read_loss_history",
    "deepspeed_config",
    "tokenize_row",
    "tokenize_rows",
    "global_batches",
    "IGNORE_INDEX",
]
