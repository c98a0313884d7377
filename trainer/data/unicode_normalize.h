// Unicode normalization form C (Hugging Face's "NFC" normalizer, Qwen2's), through
// ICU (Debian's libicu-dev). ICU 72 implements Unicode 15.0 and node 20's ICU 17.0:
// only characters assigned since 15.0 can normalize differently. Ill-formed UTF-8
// passes through byte for byte, so tokenizers keep round-tripping arbitrary bytes.
// Thread-safe (ICU's normalizer instances are immutable).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace trainer::data {

class NfcNormalizer {
 public:
  // Fails when ICU has no normalization data, or gpt-rank was built without ICU.
  static coord::StatusOr<NfcNormalizer> Create();

  // NFC of text. Returns a view of `text` itself when it is already in NFC (always
  // for ASCII), else of *scratch, which receives the normalized text.
  std::string_view Normalize(std::string_view text, std::string* scratch) const;

  // The Unicode version ICU implements ("15.0").
  static const char* UnicodeVersion();

 private:
  explicit NfcNormalizer(const void* nfc) : nfc_(nfc) {}
  const void* nfc_;  // const icu::Normalizer2*, owned by ICU
};

}  // namespace trainer::data
