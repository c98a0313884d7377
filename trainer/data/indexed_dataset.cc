// Megatron's MMIDIDX indexed dataset: builder and mmap reader (see indexed_dataset.h).
#include "trainer/data/indexed_dataset.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/fs.h"

namespace trainer::data {

using coord::ErrnoStatus;
using coord::InvalidArgument;
using coord::Status;
using coord::StatusOr;

namespace {

// MMapIndexedDataset.Index._HDR_MAGIC; the legacy "lazy"/"cached" format starts
// with "TNTIDX\0\0" instead.
constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};
constexpr char kLegacyMagic[8] = {'T', 'N', 'T', 'I', 'D', 'X', 0, 0};
constexpr uint64_t kVersion = 1;
constexpr size_t kHeaderBytes = 9 + 8 + 1 + 8 + 8;  // magic, version, dtype, N, D + 1

template <typename T>
T Load(const char* base, int64_t i) {
  T v;
  std::memcpy(&v, base + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
  return v;
}

template <typename T>
void Put(std::string* out, T v) {  // little-endian hosts only (x86-64, arm64)
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

bool IsTokenDType(uint8_t code) { return code >= 1 && code <= 8 && code != 6 && code != 7; }

// Token id range of each integer dtype.
bool FitsDType(DType dtype, int32_t v) {
  switch (dtype) {
    case DType::kUint8:
      return v >= 0 && v <= 255;
    case DType::kInt8:
      return v >= -128 && v <= 127;
    case DType::kInt16:
      return v >= -32768 && v <= 32767;
    case DType::kUint16:
      return v >= 0 && v <= 65535;
    default:
      return true;
  }
}

void AppendAs(DType dtype, int32_t v, std::string* out) {
  switch (dtype) {
    case DType::kUint8:
      Put<uint8_t>(out, static_cast<uint8_t>(v));
      break;
    case DType::kInt8:
      Put<int8_t>(out, static_cast<int8_t>(v));
      break;
    case DType::kInt16:
      Put<int16_t>(out, static_cast<int16_t>(v));
      break;
    case DType::kUint16:
      Put<uint16_t>(out, static_cast<uint16_t>(v));
      break;
    case DType::kInt32:
      Put<int32_t>(out, v);
      break;
    case DType::kInt64:
      Put<int64_t>(out, v);
      break;
    default:
      break;  // float codes are refused in Create
  }
}

Status WriteAllFd(int fd, const char* data, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + path, errno);
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

}  // namespace

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kUint8:
      return "uint8";
    case DType::kInt8:
      return "int8";
    case DType::kInt16:
      return "int16";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
    case DType::kFloat64:
      return "float64";
    case DType::kDouble:
      return "double";
    case DType::kUint16:
      return "uint16";
  }
  return "unknown";
}

int DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kUint8:
    case DType::kInt8:
      return 1;
    case DType::kInt16:
    case DType::kUint16:
      return 2;
    case DType::kInt32:
      return 4;
    case DType::kInt64:
    case DType::kFloat64:
    case DType::kDouble:
      return 8;
  }
  return 0;
}

DType BestFittingDType(int64_t vocab_size) {
  return vocab_size < 65500 ? DType::kUint16 : DType::kInt32;
}

// --- builder

IndexedDatasetBuilder::IndexedDatasetBuilder(std::string prefix, DType dtype)
    : prefix_(std::move(prefix)), dtype_(dtype) {
  const std::string tag = ".tmp." + std::to_string(getpid());
  bin_tmp_ = DataPath(prefix_) + tag;
  idx_tmp_ = IndexPath(prefix_) + tag;
  doc_idx_.push_back(0);
}

IndexedDatasetBuilder::~IndexedDatasetBuilder() {
  if (bin_fd_ >= 0) close(bin_fd_);
  if (!finalized_) {
    unlink(bin_tmp_.c_str());
    unlink(idx_tmp_.c_str());
  }
}

StatusOr<std::unique_ptr<IndexedDatasetBuilder>> IndexedDatasetBuilder::Create(
    const std::string& prefix, DType dtype) {
  if (!IsTokenDType(static_cast<uint8_t>(dtype))) {
    return InvalidArgument(std::string("indexed dataset: dtype ") + DTypeName(dtype) +
                           " cannot hold token ids");
  }
  std::unique_ptr<IndexedDatasetBuilder> b(new IndexedDatasetBuilder(prefix, dtype));
  b->bin_fd_ = open(b->bin_tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (b->bin_fd_ < 0) return ErrnoStatus("indexed dataset: create " + b->bin_tmp_, errno);
  return b;
}

Status IndexedDatasetBuilder::AddItem(const int32_t* tokens, size_t count) {
  if (finalized_) return coord::FailedPrecondition("indexed dataset: AddItem after Finalize");
  if (count > static_cast<size_t>(INT32_MAX)) {
    return InvalidArgument("indexed dataset: a sequence of " + std::to_string(count) +
                           " tokens does not fit the index's int32 sizes");
  }
  for (size_t i = 0; i < count; ++i) {
    if (!FitsDType(dtype_, tokens[i])) {
      return InvalidArgument("indexed dataset " + prefix_ + ": token id " +
                             std::to_string(tokens[i]) + " does not fit dtype " +
                             DTypeName(dtype_));
    }
    AppendAs(dtype_, tokens[i], &pending_);
  }
  sizes_.push_back(static_cast<int32_t>(count));
  num_tokens_ += static_cast<int64_t>(count);
  if (pending_.size() >= (1 << 20)) return Flush();
  return Status::Ok();
}

Status IndexedDatasetBuilder::Flush() {
  Status st = WriteAllFd(bin_fd_, pending_.data(), pending_.size(), bin_tmp_);
  pending_.clear();
  return st;
}

// MMapIndexedDataset.Index.writer: header, then sizes, pointers, doc_idx.
Status IndexedDatasetBuilder::Finalize() {
  if (finalized_) return coord::FailedPrecondition("indexed dataset: Finalize called twice");
  RETURN_IF_ERROR(Flush());
  if (fsync(bin_fd_) != 0) return ErrnoStatus("fsync " + bin_tmp_, errno);
  close(bin_fd_);
  bin_fd_ = -1;

  std::string idx;
  const size_t n = sizes_.size();
  idx.reserve(kHeaderBytes + n * 12 + doc_idx_.size() * 8);
  idx.append(kMagic, sizeof(kMagic));
  Put<uint64_t>(&idx, kVersion);
  Put<uint8_t>(&idx, static_cast<uint8_t>(dtype_));
  Put<uint64_t>(&idx, n);
  Put<uint64_t>(&idx, doc_idx_.size());
  for (int32_t s : sizes_) Put<int32_t>(&idx, s);
  int64_t address = 0;  // _get_pointers: running byte offset
  for (int32_t s : sizes_) {
    Put<int64_t>(&idx, address);
    address += static_cast<int64_t>(s) * DTypeSize(dtype_);
  }
  for (int64_t d : doc_idx_) Put<int64_t>(&idx, d);

  // The .bin goes into place first: a reader that sees the new .idx finds its
  // data; one that still sees an old .idx fails the size check, never reads garbage.
  if (rename(bin_tmp_.c_str(), DataPath(prefix_).c_str()) != 0) {
    return ErrnoStatus("rename " + bin_tmp_ + " to " + DataPath(prefix_), errno);
  }
  RETURN_IF_ERROR(coord::WriteFileAtomic(IndexPath(prefix_), idx));
  finalized_ = true;
  return Status::Ok();
}

// --- reader

IndexedDataset::~IndexedDataset() {
  if (idx_map_ != nullptr) munmap(const_cast<char*>(idx_map_), idx_bytes_);
  if (bin_map_ != nullptr) munmap(const_cast<char*>(bin_map_), bin_bytes_);
}

static Status MapFile(const std::string& path, const char** map, size_t* bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("indexed dataset: open " + path, errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus("indexed dataset: stat " + path, err);
  }
  *bytes = static_cast<size_t>(st.st_size);
  if (*bytes > 0) {
    void* p = mmap(nullptr, *bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      close(fd);
      return ErrnoStatus("indexed dataset: mmap " + path, err);
    }
    *map = static_cast<const char*>(p);
  }
  close(fd);  // the mapping keeps the file
  return Status::Ok();
}

StatusOr<std::unique_ptr<IndexedDataset>> IndexedDataset::Open(const std::string& prefix) {
  std::unique_ptr<IndexedDataset> ds(new IndexedDataset(prefix));
  RETURN_IF_ERROR(ds->OpenIndex());
  RETURN_IF_ERROR(ds->OpenData());
  return ds;
}

// MMapIndexedDataset.Index.__init__, with every assert turned into a message.
Status IndexedDataset::OpenIndex() {
  const std::string path = IndexPath(prefix_);
  RETURN_IF_ERROR(MapFile(path, &idx_map_, &idx_bytes_));
  if (idx_bytes_ >= sizeof(kLegacyMagic) && std::memcmp(idx_map_, kLegacyMagic, 8) == 0) {
    return InvalidArgument(path +
                           ": a Megatron 'lazy'/'cached' index (TNTIDX); only the 'mmap' "
                           "format (MMIDIDX) is supported: re-run preprocess with mmap");
  }
  if (idx_bytes_ < sizeof(kMagic) || std::memcmp(idx_map_, kMagic, sizeof(kMagic)) != 0) {
    return InvalidArgument(path +
                           ": wrong magic: expected \"MMIDIDX\\x00\\x00\" (Megatron's mmap "
                           "indexed dataset) in the first 9 bytes");
  }
  if (idx_bytes_ < kHeaderBytes) {
    return InvalidArgument(path + ": truncated header: " + std::to_string(idx_bytes_) +
                           " bytes, expected at least " + std::to_string(kHeaderBytes));
  }
  const uint64_t version = Load<uint64_t>(idx_map_ + 9, 0);
  if (version != kVersion) {
    return InvalidArgument(path + ": index version " + std::to_string(version) + ", expected 1");
  }
  const uint8_t code = static_cast<uint8_t>(idx_map_[17]);
  if (!IsTokenDType(code)) {
    return InvalidArgument(path + ": dtype code " + std::to_string(code) +
                           " is not a token dtype (expected 1-5 or 8: uint8, int8, int16, "
                           "int32, int64, uint16)");
  }
  dtype_ = static_cast<DType>(code);
  const uint64_t n = Load<uint64_t>(idx_map_ + 18, 0);
  const uint64_t d = Load<uint64_t>(idx_map_ + 26, 0);
  // Bound the counts before multiplying so a corrupt header cannot overflow.
  const uint64_t expected =
      (n > idx_bytes_ || d > idx_bytes_) ? UINT64_MAX : kHeaderBytes + n * 4 + n * 8 + d * 8;
  if (expected != idx_bytes_) {
    return InvalidArgument(
        path + ": index is " + std::to_string(idx_bytes_) + " bytes, expected " +
        (expected == UINT64_MAX ? std::string("far more") : std::to_string(expected)) + " for " +
        std::to_string(n) + " sequences and " + std::to_string(d) +
        " document boundaries (truncated or corrupt)");
  }
  if (d == 0) return InvalidArgument(path + ": doc_idx is empty, expected at least [0]");
  num_sequences_ = static_cast<int64_t>(n);
  doc_idx_count_ = static_cast<int64_t>(d);
  sizes_ = idx_map_ + kHeaderBytes;
  pointers_ = sizes_ + n * 4;
  doc_idx_ = pointers_ + n * 8;
  // doc_idx runs from 0 to N without going back (MMapIndexedDatasetBuilder's doc_idx).
  for (int64_t i = 0; i < doc_idx_count_; ++i) {
    const int64_t v = doc_idx(i);
    const int64_t prev = i == 0 ? 0 : doc_idx(i - 1);
    if (v < prev || v > num_sequences_ || (i == 0 && v != 0)) {
      return InvalidArgument(path + ": doc_idx[" + std::to_string(i) + "] = " + std::to_string(v) +
                             " is out of order or past the " + std::to_string(n) + " sequences");
    }
  }
  return Status::Ok();
}

Status IndexedDataset::OpenData() {
  const std::string path = DataPath(prefix_);
  RETURN_IF_ERROR(MapFile(path, &bin_map_, &bin_bytes_));
  // Pointers must be the running sum of sizes (what _get_pointers writes), so
  // every sequence lies inside .bin and Get needs no bounds checks.
  const int64_t elem = DTypeSize(dtype_);
  int64_t address = 0;
  for (int64_t i = 0; i < num_sequences_; ++i) {
    if (size(i) < 0 || pointer(i) != address) {
      return InvalidArgument(IndexPath(prefix_) + ": sequence " + std::to_string(i) + ": size " +
                             std::to_string(size(i)) + ", pointer " + std::to_string(pointer(i)) +
                             ", expected pointer " + std::to_string(address) + " (corrupt index)");
    }
    address += static_cast<int64_t>(size(i)) * elem;
  }
  num_tokens_ = address / elem;
  if (static_cast<int64_t>(bin_bytes_) != address) {
    return InvalidArgument(path + ": " + std::to_string(bin_bytes_) +
                           " bytes, but the index expects " + std::to_string(address) + " bytes (" +
                           std::to_string(num_tokens_) + " tokens of " + DTypeName(dtype_) +
                           "): the .bin does not belong to this .idx "
                           "or is truncated");
  }
  return Status::Ok();
}

int32_t IndexedDataset::size(int64_t i) const { return Load<int32_t>(sizes_, i); }
int64_t IndexedDataset::pointer(int64_t i) const { return Load<int64_t>(pointers_, i); }
int64_t IndexedDataset::doc_idx(int64_t d) const { return Load<int64_t>(doc_idx_, d); }

Status IndexedDataset::Get(int64_t idx, int64_t offset, int64_t length,
                           std::vector<int32_t>* out) const {
  if (idx < 0 || idx >= num_sequences_) {
    return coord::Status(
        coord::StatusCode::kOutOfRange,
        prefix_ + ": sequence " + std::to_string(idx) + " of " + std::to_string(num_sequences_));
  }
  const int64_t n = size(idx);
  if (length < 0) length = n - offset;
  if (offset < 0 || length < 0 || offset + length > n) {
    return coord::Status(coord::StatusCode::kOutOfRange,
                         prefix_ + ": tokens [" + std::to_string(offset) + ", " +
                             std::to_string(offset + length) + ") of sequence " +
                             std::to_string(idx) + " with " + std::to_string(n) + " tokens");
  }
  const char* p = bin_map_ + pointer(idx) + offset * DTypeSize(dtype_);
  out->reserve(out->size() + static_cast<size_t>(length));
  for (int64_t i = 0; i < length; ++i) {
    switch (dtype_) {
      case DType::kUint8:
        out->push_back(Load<uint8_t>(p, i));
        break;
      case DType::kInt8:
        out->push_back(Load<int8_t>(p, i));
        break;
      case DType::kInt16:
        out->push_back(Load<int16_t>(p, i));
        break;
      case DType::kUint16:
        out->push_back(Load<uint16_t>(p, i));
        break;
      case DType::kInt32:
        out->push_back(Load<int32_t>(p, i));
        break;
      // int64 ids past int32 cannot be vocabulary ids of any model we build.
      case DType::kInt64:
        out->push_back(static_cast<int32_t>(Load<int64_t>(p, i)));
        break;
      default:
        break;
    }
  }
  return Status::Ok();
}

}  // namespace trainer::data
