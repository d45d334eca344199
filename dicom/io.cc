#include "dicom/io.h"

#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcostrmb.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>

#include <cstdio>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "core/study.h"
#include "dicom/folder_source.h"
#include "dicom/prefilter.h"

namespace procnode {

void RegisterDecoders() {
  static std::once_flag once;
  std::call_once(once, [] {
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
  });
}

namespace {

// Where a file meta element (group 0002, always explicit VR little endian: PS3.10 7.1) claims more
// bytes than the file has left, what it claims: DCMTK allocates a meta element's value before it
// reads it, so a hostile length would cost gigabytes (found by fuzz_dicom). Empty when they fit.
std::string MetaHeaderOverrun(std::string_view bytes) {
  if (bytes.size() < 132 || bytes.substr(128, 4) != "DICM") return "";
  std::size_t at = 132;
  while (at + 8 <= bytes.size()) {
    auto u16 = [&](std::size_t o) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[o])) |
                                           static_cast<uint32_t>(static_cast<unsigned char>(bytes[o + 1])) << 8; };
    if (u16(at) != 0x0002) return "";
    const std::string_view vr = bytes.substr(at + 4, 2);
    const bool long_form = vr == "OB" || vr == "OW" || vr == "OF" || vr == "OD" || vr == "OL" || vr == "OV" ||
                           vr == "SQ" || vr == "UT" || vr == "UN" || vr == "UC" || vr == "UR" || vr == "SV" || vr == "UV";
    uint64_t length = 0;
    std::size_t header = 8;
    if (long_form) {
      if (at + 12 > bytes.size()) return "";
      length = u16(at + 8) | static_cast<uint64_t>(u16(at + 10)) << 16;
      header = 12;
      if (length == 0xFFFFFFFFu) return "";  // undefined length: DCMTK walks it
    } else {
      length = u16(at + 6);
    }
    const std::size_t left = bytes.size() - at - header;
    if (length > left) {
      char tag[16];
      std::snprintf(tag, sizeof tag, "(0002,%04X)", u16(at + 2));
      return std::string("file meta element ") + tag + " claims " + std::to_string(length) + " bytes, " +
             std::to_string(left) + " are left";
    }
    at += header + static_cast<std::size_t>(length);
  }
  return "";
}

}  // namespace

OFCondition ParseDicomBuffer(std::string_view bytes, DcmFileFormat& file, const DcmTagKey& stop) {
  if (const std::string overrun = MetaHeaderOverrun(bytes); !overrun.empty()) {
    return makeOFCondition(OFM_dcmdata, 1000, OF_error, overrun.c_str());
  }
  const uint32_t stop_tag = stop == DCM_UndefinedTagKey ? 0xFFFFFFFFu : static_cast<uint32_t>(stop.getGroup()) << 16 | stop.getElement();
  if (const std::string overrun = FirstLengthOverrun(bytes, stop_tag); !overrun.empty()) {
    return makeOFCondition(OFM_dcmdata, 1001, OF_error, (overrun + ": the file is truncated or corrupt").c_str());
  }
  DcmInputBufferStream stream;
  stream.setBuffer(bytes.data(), static_cast<offile_off_t>(bytes.size()));
  stream.setEos();
  file.transferInit();
  const OFCondition status = file.readUntilTag(stream, EXS_Unknown, EGL_noChange, DCM_MaxReadLength, stop);
  file.transferEnd();
  return status;
}

std::unique_ptr<DcmFileFormat> ReadDicomBuffer(std::string_view bytes, const std::string& name) {
  if (bytes.empty()) throw Error(ErrorCode::kInvalidInput, name + ": empty file");
  auto file = std::make_unique<DcmFileFormat>();
  const OFCondition status = ParseDicomBuffer(bytes, *file);
  if (status.bad()) {
    throw Error(ErrorCode::kInvalidInput,
                name + ": not readable as DICOM (" + std::string(status.text()) + ")");
  }
  return file;
}

std::unique_ptr<DcmFileFormat> ReadDicomFile(const std::string& path, const std::string& name) {
  auto file = std::make_unique<DcmFileFormat>();
  const OFCondition status = file->loadFile(path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
  if (status.bad()) {
    throw Error(ErrorCode::kInvalidInput, name + ": not readable as DICOM (" + std::string(status.text()) + ")");
  }
  return file;
}

std::unique_ptr<DcmFileFormat> ReadInstance(StudySource& source, const std::string& instance_id,
                                            const std::string& name) {
  if (auto* folder = dynamic_cast<FolderStudySource*>(&source)) {
    if (auto parsed = folder->TakeParsed(instance_id)) return parsed;
  }
  const std::string path = source.InstancePath(instance_id);
  return path.empty() ? ReadDicomBuffer(source.FetchInstance(instance_id), name) : ReadDicomFile(path, name);
}

std::string WriteDicomBuffer(DcmFileFormat& file, const std::string& name, E_TransferSyntax xfer) {
  OFCondition status = file.validateMetaInfo(xfer);
  if (status.bad()) {
    throw Error(ErrorCode::kInternal, name + ": meta header: " + std::string(status.text()));
  }
  file.removeInvalidGroups();
  const Uint32 length = file.calcElementLength(xfer, EET_ExplicitLength);
  std::vector<char> buffer(length + 1024);
  DcmOutputBufferStream stream(buffer.data(), buffer.size());
  file.transferInit();
  status = file.write(stream, xfer, EET_ExplicitLength, nullptr);
  file.transferEnd();
  if (status.bad()) {
    throw Error(ErrorCode::kInternal, name + ": writing DICOM failed: " + std::string(status.text()));
  }
  void* data = nullptr;
  offile_off_t written = 0;
  stream.flushBuffer(data, written);
  return std::string(static_cast<const char*>(data), static_cast<std::size_t>(written));
}

}  // namespace procnode
