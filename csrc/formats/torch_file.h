// torch_file.h — PyTorch checkpoints (.ckpt/.pt/.pth/.bin): the zip format
// (torch >= 1.6) and the legacy concatenated-pickle format.
//
// Tensors are rebuilt from the safe unpickler's references; contiguous
// tensors point straight into the mapped file (zip entries are stored), and
// strided views are gathered into owned buffers. If the top-level object has
// a "state_dict" dict it is used; nested dicts of tensors are flattened with
// "parent.child" names. Scalar top-level entries (global_step, epoch, ...)
// become metadata.
#pragma once

#include "formats/model_file.h"

namespace sdgo::formats {

bool torch_legacy_looks_like(const MappedFile & file);
Status read_torch(std::shared_ptr<MappedFile> file, ModelFiles * out);
Status load_torch(const std::string & path, ModelFiles * out);

}  // namespace sdgo::formats
