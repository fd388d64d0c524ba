// Feeds envelopes (one JSON document per stdin line) to Kafka Connect's real
// JsonConverter (schemas.enable=true) and prints one JSON line per input:
//   {"value": <what Connect holds, tagged with its Java type>,
//    "envelope": <the converter's own envelope for it (fromConnectData)>}
// or {"error": "<exception class>: <message>"} when the converter refuses it.
// Run (Java 17 single-file source):
//   java -cp '.stack/kafka/libs/*' tests/java/EnvelopeCheck.java < envelopes
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Date;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.json.JsonConverter;

public class EnvelopeCheck {
    public static void main(String[] args) throws Exception {
        JsonConverter converter = new JsonConverter();
        converter.configure(Map.of("schemas.enable", "true"), false);
        ObjectMapper mapper = new ObjectMapper();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            Map<String, Object> out = new LinkedHashMap<>();
            try {
                SchemaAndValue data = converter.toConnectData("t", line.getBytes(StandardCharsets.UTF_8));
                out.put("value", plain(data.value()));
                byte[] again = converter.fromConnectData("t", data.schema(), data.value());
                out.put("envelope", mapper.readTree(again));
            } catch (Exception e) {
                out.put("error", e.getClass().getName() + ": " + e.getMessage());
            }
            System.out.println(mapper.writeValueAsString(out));
        }
    }

    // Connect's value with every scalar tagged by its Java type, e.g. "int64:5".
    static Object plain(Object v) {
        if (v == null || v instanceof Boolean) return v;
        if (v instanceof Struct s) {
            Map<String, Object> m = new LinkedHashMap<>();
            for (Field f : s.schema().fields()) m.put(f.name(), plain(s.get(f)));
            return m;
        }
        if (v instanceof List<?> l) {
            List<Object> out = new ArrayList<>();
            for (Object x : l) out.add(plain(x));
            return out;
        }
        if (v instanceof Map<?, ?> m) {  // as [key, value] pairs: keys need not be strings
            List<Object> out = new ArrayList<>();
            for (Map.Entry<?, ?> e : m.entrySet()) out.add(List.of(plain(e.getKey()), plain(e.getValue())));
            return out;
        }
        if (v instanceof String s) return "string:" + s;
        if (v instanceof Byte b) return "int8:" + b;
        if (v instanceof Short sh) return "int16:" + sh;
        if (v instanceof Integer i) return "int32:" + i;
        if (v instanceof Long l) return "int64:" + l;
        if (v instanceof Float f) return "float:" + f;
        if (v instanceof Double d) return "double:" + d;
        if (v instanceof BigDecimal d) return "decimal:" + d.toPlainString();
        if (v instanceof Date d) return "timestamp:" + d.getTime();
        if (v instanceof byte[] b) return "bytes:" + HexFormat.of().formatHex(b);
        if (v instanceof ByteBuffer b) {
            byte[] copy = new byte[b.remaining()];
            b.duplicate().get(copy);
            return "bytes:" + HexFormat.of().formatHex(copy);
        }
        return "unknown " + v.getClass().getName() + ":" + v;
    }
}
