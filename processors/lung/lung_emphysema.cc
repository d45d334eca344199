#include "processors/lung/lung_emphysema.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "core/parallel.h"
#include "processors/lung/lung_ops.h"

namespace procnode::lung {
namespace {

using Clock = std::chrono::steady_clock;

// Canonical labels (root + 1) to 1..K in order of first voxel; returns K.
int32_t CompactLabels(int32_t* labels, std::size_t count) {
  int32_t next = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const int32_t l = labels[i];
    if (l == 0) continue;
    labels[i] = (static_cast<std::size_t>(l) == i + 1) ? ++next : labels[l - 1];
  }
  return next;
}

// Voxels in components of `mask` (in-plane labelling) that touch their slice's border.
std::vector<uint8_t> TouchingBorder(const std::vector<int32_t>& labels, Grid g) {
  std::vector<uint8_t> flagged(g.Count(), 0);  // indexed by root
  const std::size_t plane = static_cast<std::size_t>(g.nx) * g.ny;
  ParallelFor(g.nz, [&](std::size_t z) {
    auto flag = [&](std::size_t i) {
      if (labels[i] > 0) flagged[labels[i] - 1] = 1;  // roots lie in the same slice
    };
    const std::size_t base = z * plane;
    for (int x = 0; x < g.nx; ++x) {
      flag(base + x);
      flag(base + static_cast<std::size_t>(g.ny - 1) * g.nx + x);
    }
    for (int y = 0; y < g.ny; ++y) {
      flag(base + static_cast<std::size_t>(y) * g.nx);
      flag(base + static_cast<std::size_t>(y) * g.nx + g.nx - 1);
    }
  });
  std::vector<uint8_t> out(g.Count(), 0);
  ParallelFor(g.nz, [&](std::size_t z) {
    for (std::size_t i = z * plane; i < (z + 1) * plane; ++i) out[i] = labels[i] > 0 && flagged[labels[i] - 1];
  });
  return out;
}

struct Component {
  uint64_t count = 0;
  double sum_x = 0, sum_y = 0, sum_hu = 0;  // voxel coordinates
  int min_x = 1 << 30, max_x = -1, min_y = 1 << 30, max_y = -1;
};

class Timer {
 public:
  Timer(nlohmann::json& into, const LungCallbacks& callbacks) : into_(into), callbacks_(callbacks) {}
  void Step(const std::string& name, double fraction) {
    Finish();
    if (callbacks_.stop_requested && callbacks_.stop_requested()) {
      throw Error(ErrorCode::kCancelled, "lung processor stopped before step " + name);
    }
    if (callbacks_.progress) callbacks_.progress(fraction, name);
    name_ = name;
    started_ = Clock::now();
  }
  void Finish() {
    if (!name_.empty()) into_[name_] = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
    name_.clear();
  }

 private:
  nlohmann::json& into_;
  const LungCallbacks& callbacks_;
  std::string name_;
  Clock::time_point started_;
};

class Segmenter {
 public:
  Segmenter(const Volume& ct, const LungParameters& p, LungBackend& backend, LungResult& result)
      : ct_(ct), p_(p), backend_(backend), result_(result) {
    g_ = {static_cast<int>(ct.dims[0]), static_cast<int>(ct.dims[1]), static_cast<int>(ct.dims[2])};
    plane_ = static_cast<std::size_t>(g_.nx) * g_.ny;
    dx_ = ct.spacing[0];
    dy_ = ct.spacing[1];
    dz_ = std::abs(ct.spacing[2]);
    voxel_ml_ = dx_ * dy_ * dz_ / 1000.0;
    // Slice index order from the top (superior, LPS +z) down.
    superior_up_ = ct.slice_direction[2] > 0;
  }

  void Check() const {
    if (ct_.modality != "CT" || ct_.units != "HU") {
      throw Error(ErrorCode::kInvalidInput, "lung-emphysema needs CT in Hounsfield units; this series is " +
                                                (ct_.modality.empty() ? std::string("of unknown modality") : ct_.modality));
    }
    if (std::abs(ct_.slice_direction[2]) < 0.8) {
      throw Error(ErrorCode::kInvalidInput, "lung-emphysema needs axial slices; this series' slice normal is (" +
                                                std::to_string(ct_.slice_direction[0]) + ", " + std::to_string(ct_.slice_direction[1]) +
                                                ", " + std::to_string(ct_.slice_direction[2]) + ")");
    }
    if (g_.nx < 32 || g_.ny < 32 || g_.nz < 8 || g_.nz * dz_ < 80) {
      throw Error(ErrorCode::kInvalidInput, "lung-emphysema needs a chest volume; this one is " + std::to_string(g_.nx) +
                                                " x " + std::to_string(g_.ny) + " x " + std::to_string(g_.nz) +
                                                " voxels covering " + std::to_string(static_cast<int>(g_.nz * dz_)) + " mm");
    }
    if (ct_.voxels.size() != g_.Count()) throw Error(ErrorCode::kInternal, "lung-emphysema: voxel count does not match the dimensions");
  }

  // Slice at position t from the top.
  int SliceFromTop(int t) const { return superior_up_ ? g_.nz - 1 - t : t; }
  // Millimetres from the top of the volume.
  double DepthMm(int z) const { return (superior_up_ ? g_.nz - 1 - z : z) * dz_; }
  double PatientX(double x, double y, double z) const {
    return ct_.origin[0] + x * dx_ * ct_.row_direction[0] + y * dy_ * ct_.column_direction[0] +
           z * ct_.spacing[2] * ct_.slice_direction[0];
  }

  // Lung fields: air inside the body. Fills body_ (uint8) and returns the candidate mask.
  std::vector<uint8_t> LungFields() {
    const float* hu = ct_.voxels.data();
    std::vector<uint8_t> air(g_.Count());
    backend_.Threshold(hu, g_, static_cast<float>(p_.air_threshold_hu), nullptr, air.data());
    labels_.resize(g_.Count());
    backend_.Label(air.data(), g_, false, labels_.data());
    std::vector<uint8_t> inside = TouchingBorder(labels_, g_);
    for (auto& v : inside) v = !v;  // not outside air: body, table, internal air
    backend_.Label(inside.data(), g_, true, labels_.data());
    const int32_t count = CompactLabels(labels_.data(), g_.Count());
    if (count == 0) throw Error(ErrorCode::kInvalidInput, "lung-emphysema: the volume holds no body (every voxel is outside air)");
    std::vector<uint64_t> sizes(count + 1, 0);
    for (const int32_t l : labels_) ++sizes[l];
    const int32_t body = static_cast<int32_t>(std::max_element(sizes.begin() + 1, sizes.end()) - sizes.begin());
    body_min_x_.assign(g_.nz, g_.nx);
    body_max_x_.assign(g_.nz, -1);
    ParallelFor(g_.nz, [&](std::size_t z) {
      for (int y = 0; y < g_.ny; ++y) {
        std::size_t i = z * plane_ + static_cast<std::size_t>(y) * g_.nx;
        for (int x = 0; x < g_.nx; ++x, ++i) {
          const bool in_body = labels_[i] == body;
          air[i] = air[i] && in_body;
          if (in_body) {
            body_min_x_[z] = std::min(body_min_x_[z], x);
            body_max_x_[z] = std::max(body_max_x_[z], x);
          }
        }
      }
    });
    return air;
  }

  // In-plane components of one slice of `labels` (an in-plane labelling of `mask`).
  std::unordered_map<int32_t, Component> SliceComponents(int z) const {
    std::unordered_map<int32_t, Component> components;
    const float* hu = ct_.voxels.data();
    for (int y = 0; y < g_.ny; ++y) {
      std::size_t i = z * plane_ + static_cast<std::size_t>(y) * g_.nx;
      for (int x = 0; x < g_.nx; ++x, ++i) {
        const int32_t l = labels_[i];
        if (l == 0) continue;
        Component& c = components[l];
        ++c.count;
        c.sum_x += x;
        c.sum_y += y;
        c.sum_hu += hu[i];
        c.min_x = std::min(c.min_x, x);
        c.max_x = std::max(c.max_x, x);
        c.min_y = std::min(c.min_y, y);
        c.max_y = std::max(c.max_y, y);
      }
    }
    return components;
  }

  double AreaMm2(const Component& c) const { return static_cast<double>(c.count) * dx_ * dy_; }

  bool LooksLikeTrachea(const Component& c, int z) const {
    const double area = AreaMm2(c);
    if (area < 80 || area > p_.airway_max_area_mm2) return false;
    if (c.sum_hu / static_cast<double>(c.count) > -800) return false;
    const double width = (c.max_x - c.min_x + 1) * dx_, height = (c.max_y - c.min_y + 1) * dy_;
    if (std::max(width, height) > 2.5 * std::min(width, height)) return false;
    if (body_max_x_[z] < 0) return false;
    const double centre = 0.5 * (body_min_x_[z] + body_max_x_[z]);
    const double body_width = body_max_x_[z] - body_min_x_[z] + 1;
    return std::abs(c.sum_x / static_cast<double>(c.count) - centre) < 0.15 * body_width;
  }

  // Trachea and main bronchi, followed down from the top; removed from `fields`.
  void RemoveAirways(std::vector<uint8_t>& fields) {
    backend_.Label(fields.data(), g_, false, labels_.data());
    AirwayTrack& track = result_.airway;
    int start = -1;
    int32_t seed = 0;
    for (int t = 0; t + 1 < g_.nz && t < g_.nz / 2 && start < 0; ++t) {
      const int z = SliceFromTop(t);
      double best_area = 0;
      for (const auto& [label, c] : SliceComponents(z)) {
        if (!LooksLikeTrachea(c, z) || AreaMm2(c) <= best_area) continue;
        best_area = AreaMm2(c);
        seed = label;
        start = z;
      }
    }
    if (start < 0) {
      result_.warnings.push_back("trachea not found in the upper half of the volume: airways were not removed");
      return;
    }
    track.found = true;
    track.top_slice = start;
    // Branches followed slice by slice as cross-sections (in-plane pixel indices).
    struct Section {
      std::vector<uint32_t> pixels;
      double area = 0;
    };
    std::vector<Section> current(1);
    {
      const std::size_t base = start * plane_;
      for (std::size_t i = 0; i < plane_; ++i) {
        if (labels_[base + i] == seed) current[0].pixels.push_back(static_cast<uint32_t>(i));
      }
      current[0].area = static_cast<double>(current[0].pixels.size()) * dx_ * dy_;
    }
    std::vector<std::size_t> removed_voxels;
    for (const uint32_t pixel : current[0].pixels) removed_voxels.push_back(start * plane_ + pixel);
    const float* hu = ct_.voxels.data();
    std::vector<uint8_t> taken(plane_, 0);
    int carina = -1;
    for (int t = (superior_up_ ? g_.nz - 1 - start : start) + 1; t < g_.nz; ++t) {
      const int z = SliceFromTop(t);
      if (carina >= 0 && std::abs(DepthMm(z) - DepthMm(carina)) > p_.bronchus_length_mm) break;
      const std::size_t base = z * plane_;
      std::fill(taken.begin(), taken.end(), 0);
      const auto components = SliceComponents(z);
      std::vector<Section> next;
      for (const Section& branch : current) {
        const double limit = std::min(p_.airway_max_area_mm2, 3 * branch.area + 100);
        std::set<int32_t> below;
        for (const uint32_t pixel : branch.pixels) {
          if (labels_[base + pixel] != 0 && !taken[pixel]) below.insert(labels_[base + pixel]);
        }
        for (const int32_t label : below) {
          Section section;
          if (AreaMm2(components.at(label)) <= limit) {
            // The whole air region is still airway-sized.
            for (std::size_t i = 0; i < plane_; ++i) {
              if (labels_[base + i] == label && !taken[i]) section.pixels.push_back(static_cast<uint32_t>(i));
            }
          } else {
            // Merged with the lung in this slice: follow the lumen (below airway_lumen_hu) from the
            // branch's last cross-section; a lumen as large as the limit has reached the parenchyma.
            std::deque<uint32_t> queue;
            for (const uint32_t pixel : branch.pixels) {
              if (labels_[base + pixel] == label && hu[base + pixel] < p_.airway_lumen_hu && !taken[pixel]) {
                taken[pixel] = 2;
                queue.push_back(pixel);
              }
            }
            const auto max_pixels = static_cast<std::size_t>(limit / (dx_ * dy_));
            while (!queue.empty() && section.pixels.size() <= max_pixels) {
              const uint32_t pixel = queue.front();
              queue.pop_front();
              section.pixels.push_back(pixel);
              const int x = static_cast<int>(pixel % g_.nx), y = static_cast<int>(pixel / g_.nx);
              for (const auto& [ddx, ddy] : {std::pair{1, 0}, std::pair{-1, 0}, std::pair{0, 1}, std::pair{0, -1}}) {
                const int xx = x + ddx, yy = y + ddy;
                if (xx < 0 || yy < 0 || xx >= g_.nx || yy >= g_.ny) continue;
                const auto q = static_cast<uint32_t>(yy * g_.nx + xx);
                if (taken[q] || labels_[base + q] != label || hu[base + q] >= p_.airway_lumen_hu) continue;
                taken[q] = 2;
                queue.push_back(q);
              }
            }
            for (const uint32_t pixel : section.pixels) taken[pixel] = 0;
            if (section.pixels.size() > max_pixels || section.pixels.empty()) continue;  // parenchyma: the branch ends
          }
          for (const uint32_t pixel : section.pixels) taken[pixel] = 1;
          section.area = static_cast<double>(section.pixels.size()) * dx_ * dy_;
          next.push_back(std::move(section));
        }
      }
      if (next.empty()) break;
      if (next.size() >= 2 && current.size() == 1 && carina < 0) {
        carina = z;
        double sx = 0, sy = 0;
        for (const uint32_t pixel : current[0].pixels) {
          sx += pixel % g_.nx;
          sy += pixel / g_.nx;
        }
        track.trachea_at_carina = {sx / static_cast<double>(current[0].pixels.size()), sy / static_cast<double>(current[0].pixels.size())};
      }
      for (const Section& section : next) {
        for (const uint32_t pixel : section.pixels) removed_voxels.push_back(base + pixel);
      }
      track.last_slice = z;
      current = std::move(next);
    }
    track.carina_slice = carina;
    if (carina < 0) result_.warnings.push_back("carina not found: the trachea was followed without a bifurcation");
    track.removed_ml = static_cast<double>(removed_voxels.size()) * voxel_ml_;
    for (const std::size_t i : removed_voxels) fields[i] = 0;
  }

  struct Part {
    int32_t label = 0;
    uint64_t count = 0;
    double sum_x = 0;  // patient x (LPS), mm
    double top = -1e9;  // highest position along the superior axis, mm from the bottom
    double CentroidX() const { return sum_x / static_cast<double>(count); }
  };

  // Components of a mask in 3D, with their size, patient-x centroid and top.
  std::vector<Part> Parts(const std::vector<uint8_t>& mask) {
    backend_.Label(mask.data(), g_, true, labels_.data());
    const int32_t count = CompactLabels(labels_.data(), g_.Count());
    std::vector<Part> parts(count + 1);
    for (int z = 0; z < g_.nz; ++z) {
      const double height = (g_.nz - 1) * dz_ - DepthMm(z);
      for (int y = 0; y < g_.ny; ++y) {
        std::size_t i = z * plane_ + static_cast<std::size_t>(y) * g_.nx;
        for (int x = 0; x < g_.nx; ++x, ++i) {
          const int32_t l = labels_[i];
          if (l == 0) continue;
          Part& part = parts[l];
          ++part.count;
          part.sum_x += PatientX(x, y, z);
          part.top = std::max(part.top, height);
        }
      }
    }
    for (int32_t l = 1; l <= count; ++l) parts[l].label = l;
    parts.erase(parts.begin());
    std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) { return a.count > b.count; });
    return parts;
  }

  // Splits one lung component (labels_ == part) in two by in-plane erosion and geodesic regrowth.
  // Returns false when it does not split.
  bool SplitAtJunction(std::vector<uint8_t>& sides, int32_t part) {
    std::vector<uint8_t> mask(g_.Count()), eroded(g_.Count());
    for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = labels_[i] == part;
    std::vector<uint8_t> current = mask;
    for (int step = 1; step <= 30; ++step) {
      backend_.ErodeInPlane(current.data(), g_, eroded.data());
      current.swap(eroded);
      if (step > 3 && step % 2 == 0 && step < 12) continue;  // label at 1, 2, 3, 5, 7, 9, 11, 12, 13, ...
      const auto parts = Parts(current);
      if (parts.empty()) return false;
      if (parts.size() < 2) continue;
      const uint64_t total = parts[0].count + parts[1].count;
      if (parts[1].count * 5 < total) continue;  // a sliver, not a lung
      // Seeds: the two parts; right (LPS -x) = 1, left = 2. Grow back through `mask`.
      const bool first_is_left = parts[0].CentroidX() > parts[1].CentroidX();
      std::deque<std::size_t> queue;
      for (std::size_t i = 0; i < mask.size(); ++i) {
        const int32_t l = labels_[i];
        if (l == parts[0].label || l == parts[1].label) {
          const bool left = (l == parts[0].label) == first_is_left;
          sides[i] = left ? 2 : 1;
          queue.push_back(i);
        }
      }
      while (!queue.empty()) {
        const std::size_t i = queue.front();
        queue.pop_front();
        const int x = static_cast<int>(i % g_.nx), y = static_cast<int>((i / g_.nx) % g_.ny);
        const int z = static_cast<int>(i / plane_);
        auto visit = [&](std::size_t j) {
          if (mask[j] && sides[j] == 0) {
            sides[j] = sides[i];
            queue.push_back(j);
          }
        };
        if (x > 0) visit(i - 1);
        if (x + 1 < g_.nx) visit(i + 1);
        if (y > 0) visit(i - g_.nx);
        if (y + 1 < g_.ny) visit(i + g_.nx);
        if (z > 0) visit(i - plane_);
        if (z + 1 < g_.nz) visit(i + plane_);
      }
      result_.split_at_junction = true;
      result_.junction_erosions = step;
      return true;
    }
    return false;
  }

  // 1 right, 2 left, 0 elsewhere.
  std::vector<uint8_t> Sides(const std::vector<uint8_t>& fields) {
    const auto parts = Parts(fields);
    std::vector<Part> lungs;
    for (const Part& part : parts) {
      if (part.count * 10 < parts.front().count || part.count * voxel_ml_ < 20) continue;
      if (parts.front().top - part.top > 60) continue;  // below the lungs: bowel gas
      lungs.push_back(part);
    }
    if (lungs.empty()) {
      throw Error(ErrorCode::kInvalidInput, "lung-emphysema: no lung fields found (no air region inside the body); is this a chest CT?");
    }
    std::vector<uint8_t> sides(g_.Count(), 0);
    double midline = 0;
    if (lungs.size() == 1) {
      if (!SplitAtJunction(sides, lungs[0].label)) {
        double sum = 0;
        int counted = 0;
        for (int z = 0; z < g_.nz; ++z) {
          if (body_max_x_[z] >= 0) {
            sum += 0.5 * (body_min_x_[z] + body_max_x_[z]);
            ++counted;
          }
        }
        const double centre_x = counted ? sum / counted : g_.nx / 2.0;
        result_.warnings.push_back("the lungs could not be separated at their junction: split at the body's midline");
        // Labels were overwritten by the attempts: label the fields again.
        const auto again = Parts(fields);
        const int32_t lung = again.front().label;
        for (std::size_t i = 0; i < sides.size(); ++i) {
          if (labels_[i] != lung) continue;
          const int x = static_cast<int>(i % g_.nx), y = static_cast<int>((i / g_.nx) % g_.ny), z = static_cast<int>(i / plane_);
          sides[i] = PatientX(x, y, z) > PatientX(centre_x, y, z) ? 2 : 1;
        }
      }
      return sides;
    }
    // Two lungs (and perhaps detached pieces): sided by centroid.
    midline = 0.5 * (lungs[0].CentroidX() + lungs[1].CentroidX());
    std::vector<uint8_t> side_of(parts.size() + 2, 0);
    const bool same_side = (lungs[0].CentroidX() > midline) == (lungs[1].CentroidX() > midline);
    for (const Part& lung : lungs) side_of[lung.label] = lung.CentroidX() > midline ? 2 : 1;
    if (same_side) result_.warnings.push_back("the two largest lung parts lie on the same side");
    for (std::size_t i = 0; i < sides.size(); ++i) {
      if (labels_[i] > 0) sides[i] = side_of[labels_[i]];
    }
    return sides;
  }

  // In-plane closing of one side by `radius` steps, never onto the other side or out of the body.
  void Close(std::vector<uint8_t>& sides, uint8_t side, int radius, const std::vector<uint8_t>& body_or_fields) {
    std::vector<uint8_t> outside(g_.Count()), tmp(g_.Count());
    for (std::size_t i = 0; i < outside.size(); ++i) outside[i] = sides[i] != side;
    for (int r = 0; r < radius; ++r) {  // dilate the side: erode its complement
      backend_.ErodeInPlane(outside.data(), g_, tmp.data());
      outside.swap(tmp);
    }
    for (auto& v : outside) v = !v;  // dilated side
    for (int r = 0; r < radius; ++r) {
      backend_.ErodeInPlane(outside.data(), g_, tmp.data());
      outside.swap(tmp);
    }
    for (std::size_t i = 0; i < outside.size(); ++i) {
      if (outside[i] && sides[i] == 0 && body_or_fields[i]) sides[i] = side;
    }
  }

  // Per-slice holes of one side (background not reaching the slice border) join it.
  void FillHoles(std::vector<uint8_t>& sides, uint8_t side) {
    std::vector<uint8_t> background(g_.Count());
    for (std::size_t i = 0; i < background.size(); ++i) background[i] = sides[i] != side;
    backend_.Label(background.data(), g_, false, labels_.data());
    const auto open = TouchingBorder(labels_, g_);
    for (std::size_t i = 0; i < sides.size(); ++i) {
      if (background[i] && !open[i] && sides[i] == 0) sides[i] = side;
    }
  }

  std::vector<int32_t>& labels() { return labels_; }
  Grid grid() const { return g_; }
  double voxel_ml() const { return voxel_ml_; }
  const std::vector<int>& body_min_x() const { return body_min_x_; }

 private:
  const Volume& ct_;
  const LungParameters& p_;
  LungBackend& backend_;
  LungResult& result_;
  Grid g_;
  std::size_t plane_ = 0;
  double dx_ = 1, dy_ = 1, dz_ = 1, voxel_ml_ = 0.001;
  bool superior_up_ = true;
  std::vector<int32_t> labels_;
  std::vector<int> body_min_x_, body_max_x_;
};

// In-plane Gaussian smoothing (separable), sigma in mm.
std::vector<float> SmoothInPlane(const Volume& ct, double sigma_mm) {
  const int nx = static_cast<int>(ct.dims[0]), ny = static_cast<int>(ct.dims[1]), nz = static_cast<int>(ct.dims[2]);
  auto kernel_for = [&](double spacing) {
    const double sigma = sigma_mm / spacing;
    const int radius = std::max(1, static_cast<int>(std::ceil(3 * sigma)));
    std::vector<float> k(2 * radius + 1);
    double sum = 0;
    for (int i = -radius; i <= radius; ++i) sum += k[i + radius] = static_cast<float>(std::exp(-0.5 * i * i / (sigma * sigma)));
    for (auto& w : k) w = static_cast<float>(w / sum);
    return k;
  };
  const auto kx = kernel_for(ct.spacing[0]), ky = kernel_for(ct.spacing[1]);
  const int rx = static_cast<int>(kx.size() / 2), ry = static_cast<int>(ky.size() / 2);
  std::vector<float> out(ct.voxels.size());
  const std::size_t plane = static_cast<std::size_t>(nx) * ny;
  ParallelFor(nz, [&](std::size_t z) {
    std::vector<float> row(plane);
    const float* in = ct.voxels.data() + z * plane;
    for (int y = 0; y < ny; ++y) {
      for (int x = 0; x < nx; ++x) {
        float acc = 0;
        for (int k = -rx; k <= rx; ++k) acc += kx[k + rx] * in[y * nx + std::clamp(x + k, 0, nx - 1)];
        row[static_cast<std::size_t>(y) * nx + x] = acc;
      }
    }
    float* o = out.data() + z * plane;
    for (int y = 0; y < ny; ++y) {
      for (int x = 0; x < nx; ++x) {
        float acc = 0;
        for (int k = -ry; k <= ry; ++k) acc += ky[k + ry] * row[static_cast<std::size_t>(std::clamp(y + k, 0, ny - 1)) * nx + x];
        o[static_cast<std::size_t>(y) * nx + x] = acc;
      }
    }
  });
  return out;
}

void FillFromHistogram(const std::vector<uint64_t>& histogram, double sum_hu, const LungParameters& p, double voxel_ml,
                       LungMeasures& m) {
  uint64_t n = 0, below = 0, below2 = 0;
  const int bin = static_cast<int>(std::lround(p.emphysema_threshold_hu)) - kHistogramMinHu;
  const int bin2 = static_cast<int>(std::lround(p.laa2_threshold_hu)) - kHistogramMinHu;
  for (int b = 0; b < kHistogramBins; ++b) {
    n += histogram[b];
    if (b < bin) below += histogram[b];
    if (b < bin2) below2 += histogram[b];
  }
  m.voxels = n;
  m.volume_ml = static_cast<double>(n) * voxel_ml;
  if (n == 0) return;
  m.mean_hu = sum_hu / static_cast<double>(n);
  m.laa_percent = 100.0 * static_cast<double>(below) / static_cast<double>(n);
  m.laa2_percent = 100.0 * static_cast<double>(below2) / static_cast<double>(n);
  const auto wanted = static_cast<uint64_t>(std::ceil(p.percentile / 100.0 * static_cast<double>(n)));
  uint64_t cumulative = 0;
  for (int b = 0; b < kHistogramBins; ++b) {
    cumulative += histogram[b];
    if (cumulative >= std::max<uint64_t>(wanted, 1)) {
      m.percentile_hu = b + kHistogramMinHu;
      break;
    }
  }
}

// D: minus the least-squares slope of ln(clusters of size >= s) against ln(s) over distinct sizes.
void ClusterExponent(std::vector<uint64_t> sizes, LungMeasures& m) {
  m.clusters = sizes.size();
  std::sort(sizes.begin(), sizes.end());
  std::vector<std::pair<double, double>> points;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (i > 0 && sizes[i] == sizes[i - 1]) continue;
    points.emplace_back(std::log(static_cast<double>(sizes[i])), std::log(static_cast<double>(sizes.size() - i)));
  }
  if (points.size() < 3) return;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& [x, y] : points) {
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const double n = static_cast<double>(points.size());
  const double denominator = n * sxx - sx * sx;
  if (denominator <= 0) return;
  m.cluster_exponent = -(n * sxy - sx * sy) / denominator;
  m.cluster_exponent_defined = true;
}

}  // namespace

LungResult SegmentLungsAndQuantify(const Volume& ct, const LungParameters& p, LungBackend& backend,
                                   const LungCallbacks& callbacks) {
  if (p.variant != "fast" && p.variant != "accurate") {
    throw Error(ErrorCode::kInvalidInput, "lung-emphysema: variant '" + p.variant + "' is unknown (fast, accurate)");
  }
  LungResult result;
  Timer timer(result.timings_ms, callbacks);
  Segmenter s(ct, p, backend, result);
  s.Check();
  const Grid g = s.grid();
  const std::size_t count = g.Count();

  timer.Step("lung fields", 0.05);
  std::vector<uint8_t> fields = s.LungFields();
  timer.Step("airways", 0.25);
  s.RemoveAirways(fields);
  timer.Step("left and right", 0.35);
  std::vector<uint8_t> sides = s.Sides(fields);
  if (p.variant == "accurate" && p.closing_mm > 0) {
    timer.Step("closing", 0.5);
    const int radius = std::max(1, static_cast<int>(std::lround(p.closing_mm / ct.spacing[0])));
    std::vector<uint8_t> not_outside(count);
    // Closing may add tissue inside the body only: everything but outside air and the table.
    for (std::size_t i = 0; i < count; ++i) not_outside[i] = ct.voxels[i] < 200.0f;  // no bone
    for (uint8_t side : {uint8_t{1}, uint8_t{2}}) s.Close(sides, side, radius, not_outside);
  }
  if (p.fill_holes) {
    timer.Step("vessels and holes", 0.6);
    for (uint8_t side : {uint8_t{1}, uint8_t{2}}) s.FillHoles(sides, side);
  }
  fields.clear();
  fields.shrink_to_fit();

  timer.Step("densitometry", 0.75);
  std::vector<float> smoothed;
  if (p.smoothing_mm > 0) smoothed = SmoothInPlane(ct, p.smoothing_mm);
  const float* hu = smoothed.empty() ? ct.voxels.data() : smoothed.data();
  std::vector<uint8_t> lungs(count), emphysema(count);
  for (std::size_t i = 0; i < count; ++i) lungs[i] = sides[i] != 0;
  backend.Threshold(hu, g, static_cast<float>(p.emphysema_threshold_hu), lungs.data(), emphysema.data());
  std::vector<uint64_t> bins(2 * static_cast<std::size_t>(kHistogramBins));
  backend.Histogram(hu, sides.data(), g, 2, bins.data());
  for (int side = 0; side < 2; ++side) {
    result.histograms[side].assign(bins.begin() + side * kHistogramBins, bins.begin() + (side + 1) * kHistogramBins);
  }
  std::array<double, 3> sums{0, 0, 0};
  for (std::size_t i = 0; i < count; ++i) {
    if (sides[i]) sums[sides[i]] += hu[i];
  }

  timer.Step("emphysema clusters", 0.85);
  auto& labels = s.labels();
  backend.Label(emphysema.data(), g, true, labels.data());
  std::array<std::vector<uint64_t>, 2> cluster_sizes;
  {
    std::unordered_map<int32_t, std::size_t> index;  // root label -> cluster
    std::vector<uint64_t> sizes;
    std::vector<uint8_t> side_of;
    for (std::size_t i = 0; i < count; ++i) {
      const int32_t l = labels[i];
      if (l == 0) continue;
      auto [it, inserted] = index.try_emplace(l, sizes.size());
      if (inserted) {
        sizes.push_back(0);
        side_of.push_back(sides[i]);
      }
      ++sizes[it->second];
    }
    for (std::size_t c = 0; c < sizes.size(); ++c) cluster_sizes[side_of[c] == 2 ? 1 : 0].push_back(sizes[c]);
  }

  timer.Step("measurements", 0.95);
  const double voxel_ml = s.voxel_ml();
  std::vector<uint64_t> total_bins(kHistogramBins);
  for (int b = 0; b < kHistogramBins; ++b) total_bins[b] = result.histograms[0][b] + result.histograms[1][b];
  FillFromHistogram(result.histograms[0], sums[1], p, voxel_ml, result.right);
  FillFromHistogram(result.histograms[1], sums[2], p, voxel_ml, result.left);
  FillFromHistogram(total_bins, sums[1] + sums[2], p, voxel_ml, result.total);
  ClusterExponent(cluster_sizes[0], result.right);
  ClusterExponent(cluster_sizes[1], result.left);
  std::vector<uint64_t> all = cluster_sizes[0];
  all.insert(all.end(), cluster_sizes[1].begin(), cluster_sizes[1].end());
  ClusterExponent(all, result.total);
  result.labels.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    result.labels[i] = static_cast<uint8_t>(sides[i] + (emphysema[i] ? 2 : 0));
    if (emphysema[i]) {
      (sides[i] == 2 ? result.left : result.right).emphysema_voxels++;
    }
  }
  result.total.emphysema_voxels = result.right.emphysema_voxels + result.left.emphysema_voxels;
  for (LungMeasures* m : {&result.right, &result.left, &result.total}) m->emphysema_ml = static_cast<double>(m->emphysema_voxels) * voxel_ml;
  timer.Finish();
  result.device = backend.Device();
  result.device_note = backend.FallbackNote();
  if (result.right.voxels == 0 || result.left.voxels == 0) {
    result.warnings.push_back(std::string("only one lung was found (") + (result.right.voxels ? "right" : "left") + ")");
  }
  return result;
}

nlohmann::json LungResultJson(const LungResult& r) {
  auto measures = [](const LungMeasures& m) {
    nlohmann::json j{{"volume_ml", m.volume_ml},
                     {"mean_lung_density_hu", m.mean_hu},
                     {"laa950_percent", m.laa_percent},
                     {"laa910_percent", m.laa2_percent},
                     {"perc15_hu", m.percentile_hu},
                     {"emphysema_volume_ml", m.emphysema_ml},
                     {"emphysema_voxels", m.emphysema_voxels},
                     {"emphysema_clusters", m.clusters},
                     {"cluster_exponent_d", m.cluster_exponent_defined ? nlohmann::json(m.cluster_exponent) : nlohmann::json()},
                     {"voxels", m.voxels}};
    return j;
  };
  nlohmann::json j{{"right_lung", measures(r.right)},
                   {"left_lung", measures(r.left)},
                   {"total", measures(r.total)},
                   {"left_right_volume_ratio", r.right.volume_ml > 0 ? nlohmann::json(r.left.volume_ml / r.right.volume_ml) : nlohmann::json()},
                   {"airway", {{"found", r.airway.found}, {"top_slice", r.airway.top_slice}, {"carina_slice", r.airway.carina_slice},
                               {"last_slice", r.airway.last_slice}, {"trachea_at_carina_voxel", r.airway.trachea_at_carina},
                               {"removed_ml", r.airway.removed_ml}}},
                   {"split_at_junction", r.split_at_junction},
                   {"junction_erosions", r.junction_erosions},
                   {"labels", {{"1", "right lung"}, {"2", "left lung"}, {"3", "emphysema, right lung"}, {"4", "emphysema, left lung"}}},
                   {"warnings", r.warnings},
                   {"device", r.device},
                   {"timings_ms", r.timings_ms}};
  if (!r.device_note.empty()) j["device_note"] = r.device_note;
  return j;
}

}  // namespace procnode::lung
