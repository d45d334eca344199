#include "processors/radiomics/rtstruct.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "core/error.h"
#include "dicom/image.h"
#include "dicom/io.h"

namespace procnode::radiomics {
namespace {

// The grid's inverse affine: continuous voxel indices of a patient-space point.
struct ToIndex {
  std::array<std::array<double, 3>, 3> inverse{};
  std::array<double, 3> origin{};
  explicit ToIndex(const Volume& v) {
    const std::array<std::array<double, 3>, 3> m{{{v.row_direction[0] * v.spacing[0], v.column_direction[0] * v.spacing[1],
                                                    v.slice_direction[0] * v.spacing[2]},
                                                   {v.row_direction[1] * v.spacing[0], v.column_direction[1] * v.spacing[1],
                                                    v.slice_direction[1] * v.spacing[2]},
                                                   {v.row_direction[2] * v.spacing[0], v.column_direction[2] * v.spacing[1],
                                                    v.slice_direction[2] * v.spacing[2]}}};
    const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                       m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if (std::abs(det) < 1e-12) throw Error(ErrorCode::kInvalidInput, "RTSTRUCT: the image grid is degenerate");
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) {
        const int r1 = (c + 1) % 3, r2 = (c + 2) % 3, c1 = (r + 1) % 3, c2 = (r + 2) % 3;
        inverse[r][c] = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det;
      }
    }
    origin = v.origin;
  }
  std::array<double, 3> operator()(const std::array<double, 3>& p) const {
    const std::array<double, 3> d{p[0] - origin[0], p[1] - origin[1], p[2] - origin[2]};
    return {inverse[0][0] * d[0] + inverse[0][1] * d[1] + inverse[0][2] * d[2],
            inverse[1][0] * d[0] + inverse[1][1] * d[1] + inverse[1][2] * d[2],
            inverse[2][0] * d[0] + inverse[2][1] * d[1] + inverse[2][2] * d[2]};
  }
};

}  // namespace

std::vector<StructureRoi> ReadStructureSet(const std::string& bytes, const std::string& name) {
  auto file = ReadDicomBuffer(bytes, name);
  DcmDataset& ds = *file->getDataset();
  if (DicomString(ds, DCM_Modality) != "RTSTRUCT") throw Error(ErrorCode::kInvalidInput, name + ": not an RT Structure Set");
  std::map<int, StructureRoi> rois;
  for (unsigned long i = 0;; ++i) {
    DcmItem* item = nullptr;
    if (ds.findAndGetSequenceItem(DCM_StructureSetROISequence, item, static_cast<int>(i)).bad()) break;
    Sint32 number = 0;
    item->findAndGetSint32(DCM_ROINumber, number);
    rois[number] = {.number = number, .name = DicomString(*item, DCM_ROIName),
                    .frame_of_reference_uid = DicomString(*item, DCM_ReferencedFrameOfReferenceUID)};
  }
  for (unsigned long i = 0;; ++i) {
    DcmItem* item = nullptr;
    if (ds.findAndGetSequenceItem(DCM_ROIContourSequence, item, static_cast<int>(i)).bad()) break;
    Sint32 number = 0;
    item->findAndGetSint32(DCM_ReferencedROINumber, number);
    StructureRoi& roi = rois[number];
    roi.number = number;
    for (unsigned long c = 0;; ++c) {
      DcmItem* contour = nullptr;
      if (item->findAndGetSequenceItem(DCM_ContourSequence, contour, static_cast<int>(c)).bad()) break;
      if (DicomString(*contour, DCM_ContourGeometricType) != "CLOSED_PLANAR") continue;
      // The coordinates' whole value, parsed here: DCMTK's per-value access (also behind its string
      // array) finds value k by walking the string from its start, quadratic in the points.
      const char* raw = nullptr;
      Uint32 length = 0;
      contour->findAndGetString(DCM_ContourData, raw, length);
      const std::string text = raw != nullptr ? std::string(raw, length) : std::string();
      std::vector<double> values;
      const char* at = text.c_str();
      const char* end = at + text.size();
      while (at < end) {
        char* next = nullptr;
        const double x = std::strtod(at, &next);
        if (next == at || !std::isfinite(x)) break;  // "nan" and "inf" are no coordinates
        values.push_back(x);
        at = next;
        while (at < end && (*at == '\\' || *at == ' ')) ++at;
      }
      if (values.empty() || values.size() % 3 != 0 || at < end) {
        throw Error(ErrorCode::kInvalidInput, name + ": ROI " + std::to_string(number) + " contour " + std::to_string(c + 1) +
                                                  " has " + std::to_string(values.size()) +
                                                  " readable coordinates (a non-empty multiple of 3 is needed)");
      }
      std::vector<std::array<double, 3>> points(values.size() / 3);
      for (std::size_t k = 0; k < values.size(); ++k) points[k / 3][k % 3] = values[k];
      roi.contours.push_back(std::move(points));
    }
  }
  std::vector<StructureRoi> out;
  for (auto& [number, roi] : rois) out.push_back(std::move(roi));
  return out;
}

std::vector<uint8_t> RasteriseRoi(const StructureRoi& roi, const Volume& grid) {
  const ToIndex to_index(grid);
  const std::array<long, 3> n{static_cast<long>(grid.dims[0]), static_cast<long>(grid.dims[1]), static_cast<long>(grid.dims[2])};
  // Contours by the slice they lie on: (normal axis, slice index) -> polygons in the other two axes.
  std::map<std::pair<int, long>, std::vector<std::vector<std::array<double, 2>>>> slices;
  for (std::size_t c = 0; c < roi.contours.size(); ++c) {
    std::vector<std::array<double, 3>> points;
    for (const auto& p : roi.contours[c]) points.push_back(to_index(p));
    int normal = -1;
    for (int a = 0; a < 3 && normal < 0; ++a) {
      const auto [lo, hi] = std::minmax_element(points.begin(), points.end(), [a](const auto& x, const auto& y) { return x[a] < y[a]; });
      if ((*hi)[a] - (*lo)[a] < 0.5) normal = a;
    }
    if (normal < 0) {
      throw Error(ErrorCode::kInvalidInput, "RTSTRUCT ROI \"" + roi.name + "\" contour " + std::to_string(c + 1) +
                                                " is not planar along the image's slices");
    }
    double mean = 0;
    for (const auto& p : points) mean += p[normal];
    mean /= points.size();
    if (!(std::abs(mean) < 1e9)) continue;  // far off the image: outside its field of view
    const long slice = std::lround(mean);
    if (slice < 0 || slice >= n[normal]) continue;  // off the image's slices: outside its field of view
    const int a = (normal + 1) % 3, b = (normal + 2) % 3;
    std::vector<std::array<double, 2>> polygon;
    for (const auto& p : points) polygon.push_back({p[a], p[b]});
    slices[{normal, slice}].push_back(std::move(polygon));
  }
  std::vector<uint8_t> mask(grid.VoxelCount(), 0);
  for (const auto& [where, polygons] : slices) {
    const auto [normal, slice] = where;
    const int a = (normal + 1) % 3, b = (normal + 2) % 3;
    std::vector<double> crossings;
    for (long row = 0; row < n[b]; ++row) {
      crossings.clear();
      for (const auto& polygon : polygons) {
        for (std::size_t e = 0; e < polygon.size(); ++e) {
          const auto& p = polygon[e];
          const auto& q = polygon[(e + 1) % polygon.size()];
          if ((p[1] <= row && row < q[1]) || (q[1] <= row && row < p[1])) {
            crossings.push_back(p[0] + (row - p[1]) * (q[0] - p[0]) / (q[1] - p[1]));
          }
        }
      }
      std::sort(crossings.begin(), crossings.end());
      for (std::size_t k = 0; k + 1 < crossings.size(); k += 2) {
        // Clamped to the row before any conversion: a contour may reach far past the image.
        const double from = std::clamp(crossings[k], -1.0, static_cast<double>(n[a]));
        const double to = std::clamp(crossings[k + 1], -1.0, static_cast<double>(n[a]));
        const long first = std::max(0L, static_cast<long>(std::ceil(from)));
        const long last = std::min(n[a] - 1, static_cast<long>(std::floor(to)));
        for (long col = first; col <= last; ++col) {
          std::array<long, 3> index{};
          index[normal] = slice, index[a] = col, index[b] = row;
          mask[static_cast<std::size_t>((index[2] * n[1] + index[1]) * n[0] + index[0])] = 1;
        }
      }
    }
  }
  return mask;
}

}  // namespace procnode::radiomics
