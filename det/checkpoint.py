import os
from typing import Any

from detectron2.checkpoint import DetectionCheckpointer

from common.checkpoint_files import save_file


class AtomicCheckpointer(DetectionCheckpointer):
    """Detectron2's checkpointer, writing through common.checkpoint_files.save_file (a temporary
    file, then a rename): a full disk ends with one line and leaves the earlier checkpoints whole."""

    def save(self, name: str, **kwargs: Any) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict(), **{k: obj.state_dict() for k, obj in self.checkpointables.items()},
                **kwargs}
        path = os.path.join(self.save_dir, f"{name}.pth")
        self.logger.info(f"Saving checkpoint to {path}")
        save_file(data, path)
        self.tag_last_checkpoint(os.path.basename(path))
