#include "dicom/io.h"

#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcostrmb.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>

#include <mutex>
#include <vector>

#include "core/error.h"
#include "core/study.h"
#include "dicom/folder_source.h"

namespace procnode {

void RegisterDecoders() {
  static std::once_flag once;
  std::call_once(once, [] {
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
  });
}

OFCondition ParseDicomBuffer(std::string_view bytes, DcmFileFormat& file, const DcmTagKey& stop) {
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
