#include "processors/radiomics/segmentation.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "core/error.h"
#include "dicom/image.h"
#include "dicom/io.h"

namespace procnode::radiomics {
namespace {

using Vec = std::array<double, 3>;

double Dot(const Vec& a, const Vec& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

struct Frame {
  std::size_t index = 0;  // in the pixel data
  int segment = 0;        // 0 for a LABELMAP (the pixel value says)
  Vec position{};
  double depth = 0;       // along the frames' normal
};

DcmItem* Item(DcmItem* parent, const DcmTagKey& sequence) {
  DcmItem* item = nullptr;
  if (parent == nullptr || parent->findAndGetSequenceItem(sequence, item, 0).bad()) return nullptr;
  return item;
}

// A frame's functional group item: its own, else the shared one.
DcmItem* Group(DcmItem* own, DcmItem* shared, const DcmTagKey& sequence) {
  DcmItem* item = Item(own, sequence);
  return item != nullptr ? item : Item(shared, sequence);
}

}  // namespace

std::vector<SegmentRegion> ReadSegmentation(const std::string& bytes, const std::string& name, const Volume& grid,
                                            const std::string& frame_of_reference) {
  auto file = ReadDicomBuffer(bytes, name);
  DcmDataset& ds = *file->getDataset();
  if (DicomString(ds, DCM_Modality) != "SEG") throw Error(ErrorCode::kInvalidInput, name + ": not a Segmentation");
  const std::string own_frame = DicomString(ds, DCM_FrameOfReferenceUID);
  if (!frame_of_reference.empty() && !own_frame.empty() && own_frame != frame_of_reference) return {};
  const std::string type = DicomString(ds, DCM_SegmentationType);
  if (type != "BINARY" && type != "FRACTIONAL" && type != "LABELMAP") {
    throw Error(ErrorCode::kInvalidInput, name + ": SegmentationType \"" + type + "\" is none of BINARY, FRACTIONAL, LABELMAP");
  }
  const long rows = static_cast<long>(DicomNumber(ds, DCM_Rows).value_or(0));
  const long columns = static_cast<long>(DicomNumber(ds, DCM_Columns).value_or(0));
  const long frames = static_cast<long>(DicomNumber(ds, DCM_NumberOfFrames).value_or(1));
  const int bits = static_cast<int>(DicomNumber(ds, DCM_BitsAllocated).value_or(0));
  if (rows <= 0 || columns <= 0 || frames <= 0 || rows > 65535 || columns > 65535 || frames > 100000) {
    throw Error(ErrorCode::kInvalidInput, name + ": Rows, Columns or NumberOfFrames missing or out of range");
  }
  if ((type == "BINARY" && bits != 1) || (type != "BINARY" && bits != 8 && bits != 16)) {
    throw Error(ErrorCode::kInvalidInput, name + ": BitsAllocated " + std::to_string(bits) + " does not fit a " + type + " segmentation");
  }
  const double fractional_half = DicomNumber(ds, DCM_MaximumFractionalValue).value_or(255) / 2;

  std::map<int, SegmentRegion> segments;
  for (int i = 0;; ++i) {
    DcmItem* item = nullptr;
    if (ds.findAndGetSequenceItem(DCM_SegmentSequence, item, i).bad()) break;
    SegmentRegion s;
    s.number = static_cast<int>(DicomNumber(*item, DCM_SegmentNumber).value_or(0));
    s.label = DicomString(*item, DCM_SegmentLabel);
    if (DcmItem* code = Item(item, DCM_SegmentedPropertyTypeCodeSequence)) {
      s.code_value = DicomString(*code, DCM_CodeValue);
      s.code_scheme = DicomString(*code, DCM_CodingSchemeDesignator);
      s.code_meaning = DicomString(*code, DCM_CodeMeaning);
    }
    if (DcmItem* code = Item(item, DCM_SegmentedPropertyCategoryCodeSequence)) {
      s.category_value = DicomString(*code, DCM_CodeValue);
      s.category_scheme = DicomString(*code, DCM_CodingSchemeDesignator);
      s.category_meaning = DicomString(*code, DCM_CodeMeaning);
    }
    segments[s.number] = std::move(s);
  }
  if (segments.empty()) throw Error(ErrorCode::kInvalidInput, name + ": the SEG has no SegmentSequence");

  // Frames: their segment and place; one orientation and pixel spacing for all.
  DcmItem* shared = Item(&ds, DCM_SharedFunctionalGroupsSequence);
  std::optional<std::array<double, 6>> orientation;
  std::array<double, 2> pixel_spacing{0, 0};
  double spacing_between = 0;
  std::vector<Frame> placed;
  for (long f = 0; f < frames; ++f) {
    DcmItem* own = nullptr;
    if (ds.findAndGetSequenceItem(DCM_PerFrameFunctionalGroupsSequence, own, static_cast<int>(f)).bad()) {
      throw Error(ErrorCode::kInvalidInput, name + ": frame " + std::to_string(f + 1) + " has no per-frame functional group");
    }
    DicomImage geometry;
    geometry.name = name;
    ReadPlaneGeometry(Group(own, shared, DCM_PlanePositionSequence), Group(own, shared, DCM_PlaneOrientationSequence),
                      Group(own, shared, DCM_PixelMeasuresSequence), geometry);
    const auto finite = [](const auto& values) { return std::all_of(values.begin(), values.end(), [](double x) { return std::isfinite(x); }); };
    if (!geometry.position || !geometry.orientation || !geometry.has_pixel_spacing || !finite(*geometry.position) ||
        !finite(*geometry.orientation) || !finite(geometry.pixel_spacing)) {
      throw Error(ErrorCode::kInvalidInput, name + ": frame " + std::to_string(f + 1) + " lacks its position, orientation or pixel spacing");
    }
    if (!orientation) {
      orientation = geometry.orientation;
      pixel_spacing = geometry.pixel_spacing;
      if (DcmItem* measures = Group(own, shared, DCM_PixelMeasuresSequence)) {
        spacing_between = DicomNumber(*measures, DCM_SpacingBetweenSlices).value_or(0);
        if (spacing_between <= 0) spacing_between = geometry.slice_thickness;
      }
    } else {
      for (int k = 0; k < 6; ++k) {
        if (std::abs((*orientation)[k] - (*geometry.orientation)[k]) > 1e-4) {
          throw Error(ErrorCode::kInvalidInput, name + ": frames of differing orientations are not supported");
        }
      }
    }
    Frame frame{.index = static_cast<std::size_t>(f), .position = *geometry.position};
    if (type != "LABELMAP") {
      DcmItem* identification = Item(own, DCM_SegmentIdentificationSequence);
      if (identification == nullptr) identification = Item(shared, DCM_SegmentIdentificationSequence);
      const auto number = identification != nullptr ? DicomNumber(*identification, DCM_ReferencedSegmentNumber) : std::nullopt;
      if (!number || !segments.contains(static_cast<int>(*number))) {
        throw Error(ErrorCode::kInvalidInput, name + ": frame " + std::to_string(f + 1) + " references no segment of the SEG");
      }
      frame.segment = static_cast<int>(*number);
    }
    placed.push_back(frame);
  }
  const Vec row_dir{(*orientation)[0], (*orientation)[1], (*orientation)[2]};     // along a row: column index grows
  const Vec column_dir{(*orientation)[3], (*orientation)[4], (*orientation)[5]};  // down a column: row index grows
  const Vec normal{row_dir[1] * column_dir[2] - row_dir[2] * column_dir[1], row_dir[2] * column_dir[0] - row_dir[0] * column_dir[2],
                   row_dir[0] * column_dir[1] - row_dir[1] * column_dir[0]};
  for (Frame& f : placed) f.depth = Dot(f.position, normal);
  // Half the frame spacing: from the attributes, else the smallest gap between frame planes,
  // else the grid's own slice spacing.
  std::vector<double> depths;
  for (const Frame& f : placed) depths.push_back(f.depth);
  std::sort(depths.begin(), depths.end());
  double gap = 0;
  for (std::size_t i = 1; i < depths.size(); ++i) {
    if (depths[i] - depths[i - 1] > 1e-3 && (gap == 0 || depths[i] - depths[i - 1] < gap)) gap = depths[i] - depths[i - 1];
  }
  const double half = 0.5 * (spacing_between > 0 ? spacing_between : gap > 0 ? gap : grid.spacing[2]);

  // The pixel data, decompressed where it is compressed.
  const E_TransferSyntax xfer = ds.getOriginalXfer();
  if (DcmXfer(xfer).isEncapsulated()) {
    RegisterDecoders();
    if (ds.chooseRepresentation(EXS_LittleEndianExplicit, nullptr).bad() || !ds.canWriteXfer(EXS_LittleEndianExplicit)) {
      throw Error(ErrorCode::kUnsupported, name + ": transfer syntax " + std::string(DcmXfer(xfer).getXferName()) + " cannot be decoded");
    }
  }
  const Uint8* pixels = nullptr;
  unsigned long length = 0;
  if (ds.findAndGetUint8Array(DCM_PixelData, pixels, &length).bad() || pixels == nullptr) {
    throw Error(ErrorCode::kInvalidInput, name + ": the SEG has no pixel data");
  }
  const std::size_t per_frame = static_cast<std::size_t>(rows) * static_cast<std::size_t>(columns);
  const std::size_t needed = bits == 1 ? (per_frame * frames + 7) / 8 : per_frame * frames * (bits / 8);
  if (length < needed) {
    throw Error(ErrorCode::kInvalidInput, name + ": the pixel data holds " + std::to_string(length) + " bytes, its " + std::to_string(frames) +
                                              " frames need " + std::to_string(needed));
  }
  auto value = [&](std::size_t frame, std::size_t pixel) -> int {
    const std::size_t i = frame * per_frame + pixel;
    if (bits == 1) return (pixels[i / 8] >> (i % 8)) & 1;
    if (bits == 8) return pixels[i];
    return pixels[2 * i] | (pixels[2 * i + 1] << 8);  // little endian after decoding
  };

  // Each voxel centre of the grid: the frames whose plane it lies on, and the pixel under it.
  for (auto& [number, s] : segments) s.voxels.assign(grid.VoxelCount(), 0);
  std::sort(placed.begin(), placed.end(), [](const Frame& a, const Frame& b) { return a.depth < b.depth; });
  const std::size_t nx = grid.dims[0], ny = grid.dims[1], nz = grid.dims[2];
  auto centre = [&](double i, double j, double k) {
    Vec p{};
    for (int a = 0; a < 3; ++a) {
      p[a] = grid.origin[a] + i * grid.spacing[0] * grid.row_direction[a] + j * grid.spacing[1] * grid.column_direction[a] +
             k * grid.spacing[2] * grid.slice_direction[a];
    }
    return p;
  };
  for (std::size_t k = 0; k < nz; ++k) {
    // A slice no frame comes near is skipped whole (its corners bound its depths).
    double low = 1e300, high = -1e300;
    for (const double i : {0.0, nx - 1.0}) {
      for (const double j : {0.0, ny - 1.0}) {
        const double d = Dot(centre(i, j, static_cast<double>(k)), normal);
        low = std::min(low, d), high = std::max(high, d);
      }
    }
    const auto near = std::lower_bound(placed.begin(), placed.end(), low - half, [](const Frame& f, double d) { return f.depth < d; });
    if (near == placed.end() || near->depth > high + half) continue;
    for (std::size_t j = 0; j < ny; ++j) {
      for (std::size_t i = 0; i < nx; ++i) {
        Vec p{};
        for (int a = 0; a < 3; ++a) {
          p[a] = grid.origin[a] + i * grid.spacing[0] * grid.row_direction[a] + j * grid.spacing[1] * grid.column_direction[a] +
                 k * grid.spacing[2] * grid.slice_direction[a];
        }
        const double depth = Dot(p, normal);
        auto first = std::lower_bound(placed.begin(), placed.end(), depth - half, [](const Frame& f, double d) { return f.depth < d; });
        for (auto f = first; f != placed.end() && f->depth <= depth + half; ++f) {
          if (std::abs(f->depth - depth) > half || (half > 0 && std::abs(f->depth - depth) == half && f->depth < depth)) continue;
          const Vec d{p[0] - f->position[0], p[1] - f->position[1], p[2] - f->position[2]};
          const long column = std::lround(Dot(d, row_dir) / pixel_spacing[1]);
          const long row = std::lround(Dot(d, column_dir) / pixel_spacing[0]);
          if (row < 0 || column < 0 || row >= rows || column >= columns) continue;
          const int v = value(f->index, static_cast<std::size_t>(row) * columns + column);
          const std::size_t voxel = (k * ny + j) * nx + i;
          if (type == "BINARY") {
            if (v) segments[f->segment].voxels[voxel] = 1;
          } else if (type == "FRACTIONAL") {
            if (v >= fractional_half) segments[f->segment].voxels[voxel] = 1;
          } else if (v != 0) {
            const auto s = segments.find(v);
            if (s != segments.end()) s->second.voxels[voxel] = 1;
          }
        }
      }
    }
  }
  std::vector<SegmentRegion> out;
  for (auto& [number, s] : segments) {
    if (type == "LABELMAP" && number == 0) continue;  // the background
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace procnode::radiomics
