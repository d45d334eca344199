#include "dicom/jpeg2000.h"

#include <openjpeg.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace procnode {
namespace {

struct Memory {
  const uint8_t* data;
  std::size_t size;
  std::size_t at = 0;
};

OPJ_SIZE_T Read(void* buffer, OPJ_SIZE_T count, void* user) {
  auto* memory = static_cast<Memory*>(user);
  if (memory->at >= memory->size) return static_cast<OPJ_SIZE_T>(-1);
  const std::size_t n = std::min<std::size_t>(count, memory->size - memory->at);
  std::memcpy(buffer, memory->data + memory->at, n);
  memory->at += n;
  return n;
}

OPJ_OFF_T Skip(OPJ_OFF_T count, void* user) {
  auto* memory = static_cast<Memory*>(user);
  const auto target = static_cast<OPJ_OFF_T>(memory->at) + count;
  if (target < 0 || target > static_cast<OPJ_OFF_T>(memory->size)) return -1;
  memory->at = static_cast<std::size_t>(target);
  return count;
}

OPJ_BOOL Seek(OPJ_OFF_T position, void* user) {
  auto* memory = static_cast<Memory*>(user);
  if (position < 0 || position > static_cast<OPJ_OFF_T>(memory->size)) return OPJ_FALSE;
  memory->at = static_cast<std::size_t>(position);
  return OPJ_TRUE;
}

void KeepMessage(const char* message, void* user) {
  auto* text = static_cast<std::string*>(user);
  if (text->empty() && message != nullptr) {
    *text = message;
    while (!text->empty() && (text->back() == '\n' || text->back() == ' ')) text->pop_back();
  }
}

}  // namespace

bool IsJpeg2000TransferSyntax(const std::string& uid) {
  return uid == "1.2.840.10008.1.2.4.90" || uid == "1.2.840.10008.1.2.4.91" || uid == "1.2.840.10008.1.2.4.201" ||
         uid == "1.2.840.10008.1.2.4.202" || uid == "1.2.840.10008.1.2.4.203";
}

Jpeg2000Frame DecodeJpeg2000(const uint8_t* data, std::size_t size, const std::string& name) {
  if (size < 4) throw Error(ErrorCode::kInvalidInput, name + ": JPEG 2000 frame of " + std::to_string(size) + " bytes");
  // A raw codestream starts with SOC (FF 4F); a JP2 file with its signature box.
  const bool jp2 = !(data[0] == 0xFF && data[1] == 0x4F);
  std::unique_ptr<opj_codec_t, decltype(&opj_destroy_codec)> codec(
      opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K), &opj_destroy_codec);
  std::string message;
  opj_set_error_handler(codec.get(), KeepMessage, &message);
  opj_dparameters_t parameters;
  opj_set_default_decoder_parameters(&parameters);
  if (!opj_setup_decoder(codec.get(), &parameters)) {
    throw Error(ErrorCode::kInternal, name + ": OpenJPEG decoder set-up failed");
  }
  Memory memory{data, size};
  std::unique_ptr<opj_stream_t, decltype(&opj_stream_destroy)> stream(opj_stream_create(1 << 16, OPJ_TRUE),
                                                                       &opj_stream_destroy);
  opj_stream_set_user_data(stream.get(), &memory, nullptr);
  opj_stream_set_user_data_length(stream.get(), size);
  opj_stream_set_read_function(stream.get(), Read);
  opj_stream_set_skip_function(stream.get(), Skip);
  opj_stream_set_seek_function(stream.get(), Seek);
  opj_image_t* raw_image = nullptr;
  const bool header = opj_read_header(stream.get(), codec.get(), &raw_image);
  std::unique_ptr<opj_image_t, decltype(&opj_image_destroy)> image(raw_image, &opj_image_destroy);
  if (!header || !image || !opj_decode(codec.get(), stream.get(), image.get()) ||
      !opj_end_decompress(codec.get(), stream.get())) {
    throw Error(ErrorCode::kInvalidInput,
                name + ": JPEG 2000 data cannot be decoded (" + (message.empty() ? "OpenJPEG failed" : message) + ")");
  }
  if (image->numcomps != 1) {
    throw Error(ErrorCode::kUnsupported, name + ": JPEG 2000 image with " + std::to_string(image->numcomps) +
                                             " components (colour) is not a volume");
  }
  const opj_image_comp_t& component = image->comps[0];
  if (component.data == nullptr || component.dx != 1 || component.dy != 1) {
    throw Error(ErrorCode::kUnsupported, name + ": subsampled or empty JPEG 2000 component");
  }
  Jpeg2000Frame frame;
  frame.width = component.w;
  frame.height = component.h;
  frame.components = image->numcomps;
  frame.precision = component.prec;
  frame.is_signed = component.sgnd != 0;
  frame.samples.assign(component.data, component.data + static_cast<std::size_t>(component.w) * component.h);
  return frame;
}

}  // namespace procnode
