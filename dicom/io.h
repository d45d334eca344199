// DICOM Part 10 bytes <-> DCMTK objects, with DCMTK status codes turned into Error at once (but
// for ParseDicomBuffer, whose caller judges the status).
// RegisterDecoders() registers DCMTK's JPEG, JPEG-LS and RLE decoders once per process (inside
// Orthanc they are already registered in the shared DCMTK; registering again is harmless).
// Thread-safe.
#pragma once

#include <dcmtk/dcmdata/dctagkey.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/ofstd/ofcond.h>

#include <memory>
#include <string>
#include <string_view>

class DcmFileFormat;

namespace procnode {
class StudySource;
}

namespace procnode {

void RegisterDecoders();

// Parses Part 10 bytes (or a bare dataset without meta header). `name` identifies the object in
// error messages. Throws Error(kInvalidInput) naming it and DCMTK's reason.
std::unique_ptr<DcmFileFormat> ReadDicomBuffer(std::string_view bytes, const std::string& name);

// The same into `file`, up to `stop` (that tag and any higher one are not read; the default reads
// everything), returning DCMTK's status.
OFCondition ParseDicomBuffer(std::string_view bytes, DcmFileFormat& file, const DcmTagKey& stop = DCM_UndefinedTagKey);

// Parses a file in place (no copy through memory). Same errors as ReadDicomBuffer.
std::unique_ptr<DcmFileFormat> ReadDicomFile(const std::string& path, const std::string& name);

// ReadDicomFile when `source` has the instance as a local file, else ReadDicomBuffer of its bytes.
std::unique_ptr<DcmFileFormat> ReadInstance(StudySource& source, const std::string& instance_id,
                                            const std::string& name);

// Serialises to Part 10 bytes (Explicit VR Little Endian unless `xfer` says otherwise, e.g. the
// original compressed syntax) with a fresh meta header.
std::string WriteDicomBuffer(DcmFileFormat& file, const std::string& name, E_TransferSyntax xfer = EXS_LittleEndianExplicit);

}  // namespace procnode
